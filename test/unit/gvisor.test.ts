/**
 * gVisor's platform choice (src/contain/gvisor.ts) against stand-ins for
 * runsc that answer `runsc flags` the way an old (ptrace, kvm) and a new
 * (systrap) runsc do: the default, a platform the binary lacks, and KVM
 * without its device.
 */
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MintfsError } from '../../src/errors.js';
import { choosePlatform, gvisorPlatforms, runscFlags } from '../../src/contain/gvisor.js';
import { tempDir } from '../helpers/temp.js';
import type { TestContext } from 'node:test';

/** A script that prints runsc's platform flag help as `line` says it. */
function fakeRunsc(t: TestContext, line: string): string {
  const path = join(tempDir(t), 'runsc');
  writeFileSync(
    path,
    `#!/bin/sh\n[ "$1" = flags ] || exit 64\necho '  -platform string'\necho '    \tspecifies which platform to use: ${line}'\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

const OLD = 'ptrace (default), kvm. (default "ptrace")';
const NEW = 'systrap (default), ptrace, kvm. (default "systrap")';

function refusal(fn: () => unknown): MintfsError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MintfsError, String(err));
    return err;
  }
  assert.fail('expected a refusal');
}

describe('gVisor platform', () => {
  it('reads the platforms a runsc knows from its flag help', (t) => {
    assert.deepEqual(gvisorPlatforms(fakeRunsc(t, OLD)), ['ptrace', 'kvm']);
    assert.deepEqual(gvisorPlatforms(fakeRunsc(t, NEW)), ['systrap', 'ptrace', 'kvm']);
  });

  it('defaults to systrap where runsc has it, else ptrace; never kvm', (t) => {
    assert.equal(choosePlatform(fakeRunsc(t, OLD), undefined), 'ptrace');
    assert.equal(choosePlatform(fakeRunsc(t, NEW), undefined), 'systrap');
  });

  it('refuses a platform this runsc lacks, naming those it has', (t) => {
    const err = refusal(() => choosePlatform(fakeRunsc(t, OLD), 'systrap'));
    assert.equal(err.code, 'ERR_INPUT_INVALID');
    assert.equal(err.message, '--gvisor-platform systrap: this runsc supports ptrace, kvm');
  });

  it('refuses kvm without a usable /dev/kvm, naming the default to use instead', (t) => {
    const err = refusal(() => choosePlatform(fakeRunsc(t, NEW), 'kvm', join(tempDir(t), 'no-kvm')));
    assert.equal(err.code, 'ERR_INPUT_INVALID');
    assert.match(err.message, /^--gvisor-platform kvm: .*no-kvm is missing .*; use systrap$/);
  });

  it('takes kvm where the device is usable', (t) => {
    const device = join(tempDir(t), 'kvm');
    writeFileSync(device, '');
    assert.equal(choosePlatform(fakeRunsc(t, OLD), 'kvm', device), 'kvm');
  });

  it('refuses a binary that names no platforms', (t) => {
    const err = refusal(() => choosePlatform(fakeRunsc(t, 'nothing here'), undefined));
    assert.equal(err.code, 'ERR_SANDBOX_FAILED');
  });

  it("runs gVisor on its own network stack, the gateway's socket the only host socket it may open", () => {
    const flags = runscFlags('ptrace');
    assert.ok(flags.includes('--platform=ptrace'));
    assert.ok(flags.includes('--network=none'), 'never the host network');
    assert.ok(flags.includes('--host-uds=open'), 'connect only: no host socket is created');
    assert.ok(flags.includes('--oci-seccomp'), 'the profile is applied');
    assert.ok(!flags.some((f) => /^--network=(host|sandbox)$/.test(f)));
  });
});
