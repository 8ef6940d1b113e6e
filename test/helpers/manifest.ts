/**
 * Reading rendered Kubernetes manifests in tests without `any`: a value and
 * the path it was found at, so a missing field fails naming where it was
 * looked for (`DaemonSet/x.spec.template.spec.hostPID: not a boolean`).
 */
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';

export class Manifest {
  constructor(
    readonly value: unknown,
    readonly path: string,
  ) {}

  static all(yamlText: string): Manifest[] {
    return parseAllDocuments(yamlText).map((doc) => {
      const value: unknown = doc.toJS();
      const m = new Manifest(value, '');
      return new Manifest(value, `${m.get('kind').string()}/${m.get('metadata', 'name').string()}`);
    });
  }

  get(...keys: Array<string | number>): Manifest {
    let value = this.value;
    let path = this.path;
    for (const key of keys) {
      path = typeof key === 'number' ? `${path}[${key}]` : `${path}.${key}`;
      value =
        typeof value === 'object' && value !== null
          ? (value as Record<string | number, unknown>)[key]
          : undefined;
    }
    return new Manifest(value, path);
  }

  has(...keys: Array<string | number>): boolean {
    return this.get(...keys).value !== undefined;
  }

  string(): string {
    assert.equal(typeof this.value, 'string', `${this.path}: not a string`);
    return this.value as string;
  }

  number(): number {
    assert.equal(typeof this.value, 'number', `${this.path}: not a number`);
    return this.value as number;
  }

  list(): Manifest[] {
    assert.ok(Array.isArray(this.value), `${this.path}: not a list`);
    return (this.value as unknown[]).map((item, i) => new Manifest(item, `${this.path}[${i}]`));
  }

  strings(): string[] {
    return this.list().map((item) => item.string());
  }

  /** The item of a list whose `key` is `value` (a container by name, a mount by path). */
  find(key: string, value: unknown): Manifest {
    const found = this.list().filter((item) => item.get(key).value === value);
    assert.equal(found.length, 1, `${this.path}: one item with ${key} ${String(value)}`);
    return found[0] as Manifest;
  }
}
