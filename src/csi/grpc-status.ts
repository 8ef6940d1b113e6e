/** The one place error codes become gRPC status codes for the CSI node plugin. */
import { status } from '@grpc/grpc-js';
import type { MintfsErrorCode } from '../errors.js';

const STATUS: Partial<Record<MintfsErrorCode, status>> = {
  ERR_VOLUME_ARGUMENT: status.INVALID_ARGUMENT,
  ERR_VOLUME_DENIED: status.PERMISSION_DENIED,
  ERR_VOLUME_CONFLICT: status.ALREADY_EXISTS,
  // The operator's profile is broken or unsafe: kubelet retries once it is fixed.
  ERR_PROFILE_INVALID: status.FAILED_PRECONDITION,
  ERR_PROFILE_UNREADABLE: status.FAILED_PRECONDITION,
  ERR_PATH_UNSAFE: status.FAILED_PRECONDITION,
  ERR_NATIVE_UNAVAILABLE: status.FAILED_PRECONDITION,
};

export function grpcStatusFor(code: MintfsErrorCode): status {
  return STATUS[code] ?? status.INTERNAL;
}

/** The gRPC status name the CSI plugin answers this code with, when it has one of its own (docs). */
export function csiStatusOf(code: MintfsErrorCode): string | undefined {
  const known = STATUS[code];
  return known === undefined ? undefined : status[known];
}
