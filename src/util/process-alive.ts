/**
 * Whether a process with this pid exists, asked with signal 0 (nothing is
 * sent). EPERM means it exists and is someone else's. Only a whole number
 * from 1 to the kernel's pid limit is asked: kill(0) and kill(-n) ask about
 * process groups and kill(-1) about every process, which no pid in a file
 * or a name means; any other value is not a process.
 */
const PID_MAX_LIMIT = 4_194_304;

export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid < 1 || pid > PID_MAX_LIMIT) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
