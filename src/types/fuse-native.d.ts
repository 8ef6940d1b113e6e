// fuse-native ships no types; this declares the part mintfs uses.
declare module 'fuse-native' {
  export interface FuseStat {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    nlink: number;
    mtime: Date;
    atime: Date;
    ctime: Date;
  }
  type Done = (errno: number) => void;
  export interface FuseOps {
    init?(cb: Done): void;
    getattr?(path: string, cb: (errno: number, stat?: FuseStat) => void): void;
    fgetattr?(path: string, fd: number, cb: (errno: number, stat?: FuseStat) => void): void;
    readdir?(path: string, cb: (errno: number, names?: string[]) => void): void;
    open?(path: string, flags: number, cb: (errno: number, fd?: number) => void): void;
    read?(
      path: string,
      fd: number,
      buf: Buffer,
      len: number,
      pos: number,
      cb: (result: number) => void,
    ): void;
    release?(path: string, fd: number, cb: Done): void;
    statfs?(path: string, cb: (errno: number, stat?: Record<string, number>) => void): void;
    [op: string]: ((...args: never[]) => void) | undefined;
  }
  export interface FuseOptions {
    allowOther?: boolean;
    defaultPermissions?: boolean;
    fsname?: string;
    force?: boolean;
    mkdir?: boolean;
    timeout?: number | false;
    entryTimeout?: number;
    attrTimeout?: number;
  }
  class Fuse {
    constructor(mountpoint: string, ops: FuseOps, options?: FuseOptions);
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mountpoint: string, cb: (err: Error | null) => void): void;
  }
  export default Fuse;
}
