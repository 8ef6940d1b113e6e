/** The CSI node plugin (`mintfs csi`): the one entry point of src/csi/. */
export {
  DRIVER_NAME,
  startCsiPlugin,
  type CsiPluginOptions,
  type RunningCsiPlugin,
} from './plugin.js';
export { PolicySchema, type Policy } from './policy.js';
