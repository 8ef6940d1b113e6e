/**
 * A virtual tree as the native backend's nodes: stable path ids (the kernel
 * caches directory inodes by them across profile reloads) and, per file, the
 * mint template for the current signing key.
 */
import type { VirtualFile, VirtualTree } from '../fs/virtual-tree.js';
import { FORMAT_LAYOUTS } from '../fs/token-content.js';
import { DIRECTORY_MODE } from '../fs/virtual-tree.js';
import type { RootKey } from '../token/root-key.js';
import { signingParts } from '../token/mint.js';
import { TOKEN_LOCATION } from '../token/vocabulary.js';
import type { NativeFile, NativeNode } from './native-addon.js';

/** The root is 1 (FUSE_ROOT_ID); ids are never reused for another path. Fit in 24 bits. */
export const ROOT_PATH_ID = 1;
const MAX_PATH_ID = 2 ** 24 - 1;

export class PathIds {
  readonly #ids = new Map<string, number>([['', ROOT_PATH_ID]]);
  readonly #files = new Map<number, VirtualFile>();

  idOf(path: string): number {
    let id = this.#ids.get(path);
    if (id === undefined) {
      id = this.#ids.size + 1;
      if (id > MAX_PATH_ID) throw new RangeError('too many distinct paths over this mount’s life');
      this.#ids.set(path, id);
    }
    return id;
  }

  /** The file a path id last stood for (audit events may name a file a reload since dropped). */
  fileOf(pathId: number): VirtualFile | undefined {
    return this.#files.get(pathId);
  }

  remember(pathId: number, file: VirtualFile): void {
    this.#files.set(pathId, file);
  }
}

export function nativeFile(file: VirtualFile, key: RootKey): NativeFile {
  const { derivedKey, caveats, approval } = signingParts(file.grant, key);
  return {
    keyId: key.id,
    derivedKey,
    ...(approval === undefined
      ? {}
      : { approvalTicket: approval.ticket, approvalKey: approval.derivedKey }),
    location: TOKEN_LOCATION,
    caveats,
    ttlMs: file.grant.ttlMs,
    ...FORMAT_LAYOUTS[file.format],
    prefix: file.prefix,
    readerCaveat: file.readerCaveat,
    readers: file.readers,
  };
}

export function nativeNodes(tree: VirtualTree, key: RootKey, ids: PathIds): NativeNode[] {
  const nodes: NativeNode[] = [];
  for (const [dir, names] of tree.directories) {
    const slash = dir.lastIndexOf('/');
    nodes.push({
      pathId: ids.idOf(dir),
      parentId: dir === '' ? 0 : ids.idOf(slash < 0 ? '' : dir.slice(0, slash)),
      name: dir.slice(slash + 1),
      dir: true,
      mode: DIRECTORY_MODE,
      uid: 0,
      gid: 0,
      children: names.map((name) => ids.idOf(dir === '' ? name : `${dir}/${name}`)),
    });
  }
  for (const [path, file] of tree.files) {
    const slash = path.lastIndexOf('/');
    const pathId = ids.idOf(path);
    ids.remember(pathId, file);
    nodes.push({
      pathId,
      parentId: ids.idOf(slash < 0 ? '' : path.slice(0, slash)),
      name: path.slice(slash + 1),
      dir: false,
      mode: file.mode,
      uid: file.uid,
      gid: file.gid,
      file: nativeFile(file, key),
    });
  }
  return nodes;
}
