/**
 * A small container root file system built from this machine's files: the
 * static busybox (busybox-static) with the applets the tests use, and
 * coreutils' cat with the libraries it links, so a token is read by both
 * `cat`s. Docker imports it as an image; runc runs it as is. It has no
 * /secrets, /work or /etc/ssl: the runtimes make what they mount.
 */
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runSync } from './spawn.js';

const APPLETS = [
  'sh',
  'id',
  'grep',
  'wc',
  'sleep',
  'echo',
  'env',
  'ls',
  'nc',
  'wget',
  'head',
  'tr',
  'printenv',
  'find',
  'dd',
  'true',
  'sed',
  'tail',
  'kill',
  'touch',
  'date',
  'mv',
  'cut',
  'readlink',
  'base64',
];

export function buildBusyboxRootfs(rootfs: string): string {
  for (const sub of ['bin', 'usr/bin', 'etc', 'tmp', 'proc', 'dev', 'sys', 'run'])
    mkdirSync(join(rootfs, sub), { recursive: true });
  const busybox = readFileSync('/bin/busybox');
  if (busybox.subarray(0, 4).toString('latin1') !== '\u007fELF')
    throw new Error('/bin/busybox is not an ELF binary (install busybox-static)');
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const applet of [...APPLETS, 'cat']) symlinkSync('busybox', join(rootfs, 'bin', applet));
  addProgram(rootfs, '/usr/bin/cat');
  writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0::/:/bin/sh\n');
  return rootfs;
}

/** Copies a dynamically linked program of this machine, and every library ldd names for it. */
export function addProgram(rootfs: string, program: string): void {
  const libraries = runSync('ldd', [program], `the libraries of ${program}`)
    .split('\n')
    .map((line) => /(\/\S+) \(0x/.exec(line)?.[1])
    .filter((path): path is string => path !== undefined);
  for (const file of [program, ...libraries]) {
    mkdirSync(join(rootfs, dirname(file)), { recursive: true });
    copyFileSync(file, join(rootfs, file));
  }
}
