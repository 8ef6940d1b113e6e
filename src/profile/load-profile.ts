/** Reading a mount profile: YAML, then the schema (see config/yaml-config.ts). */
import { parseYamlConfig, readConfigFile, type ConfigKind } from '../config/yaml-config.js';
import { ProfileSchema, type Profile } from './schema.js';

const PROFILE: ConfigKind = {
  noun: 'profile',
  invalidCode: 'ERR_PROFILE_INVALID',
  unreadableCode: 'ERR_PROFILE_UNREADABLE',
};

export function loadProfile(file: string): Profile {
  return parseProfile(readConfigFile(file, PROFILE), file);
}

export function parseProfile(text: string, source: string): Profile {
  return parseYamlConfig(text, source, ProfileSchema, PROFILE);
}
