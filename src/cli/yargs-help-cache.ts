/**
 * yargs renders a command's whole help text right after it starts the
 * command's handler (yargs/build/lib/command.js, `cacheHelpMessage`), so a
 * later getHelp() or showHelp() can print that command's help. mintfs never
 * asks for help after a command has run (failures become one line, main.ts),
 * and the rendering (string widths of every option, every east-asian-width
 * lookup) costs ~15 ms: a sixth of `mintfs inspect`, which git credential
 * helpers and agent scripts run often. So, on our one instance, caching the
 * help text does nothing.
 *
 * This reaches into yargs' internal methods. If an upgrade renames them,
 * nothing breaks but start-up time, and test/unit/yargs-help-cache.test.ts
 * fails to say so.
 */
import type { Argv } from 'yargs';

interface UsageInstance {
  cacheHelpMessage?: () => void;
}
interface WithInternals {
  getInternalMethods?: () => { getUsageInstance?: () => UsageInstance };
}

/** Whether the workaround took (false: this yargs has no such internals). */
export function skipHelpCacheAfterCommands(cli: Argv): boolean {
  const usage = (cli as WithInternals).getInternalMethods?.().getUsageInstance?.();
  if (usage === undefined || typeof usage.cacheHelpMessage !== 'function') return false;
  usage.cacheHelpMessage = () => undefined;
  return true;
}
