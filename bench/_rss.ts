/**
 * Resident memory of a process tree, read from /proc: what the large-job
 * benches sample while a command runs.
 *
 * @module
 */

/**
 * RSS in kB of every process whose ancestry reaches `root`, and the largest.
 *
 * @param root The tree's root process.
 * @returns The tree's total and its largest process's RSS, in kB.
 */
export function treeRss(root: number): { total: number; largest: number } {
  const parent = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(e.name), Number(fields[1]));
      const status = Deno.readTextFileSync(`/proc/${e.name}/status`);
      rss.set(Number(e.name), Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      // gone meanwhile
    }
  }
  let total = 0, largest = 0;
  for (const [pid, kb] of rss) {
    for (let p: number | undefined = pid; p && p > 1; p = parent.get(p)) {
      if (p === root) {
        total += kb;
        largest = Math.max(largest, kb);
        break;
      }
    }
  }
  return { total, largest };
}

/**
 * Runs a command and samples its tree's RSS every 50 ms.
 *
 * @param cmd The command, not yet spawned.
 * @returns Wall seconds, success, and the peak tree and largest-process RSS in kB.
 */
export async function runSampled(
  cmd: Deno.Command,
): Promise<{ seconds: number; success: boolean; total: number; largest: number }> {
  const t0 = performance.now();
  const child = cmd.spawn();
  let peak = { total: 0, largest: 0 };
  const timer = setInterval(() => {
    const r = treeRss(child.pid);
    peak = { total: Math.max(peak.total, r.total), largest: Math.max(peak.largest, r.largest) };
  }, 50);
  const status = await child.status;
  clearInterval(timer);
  return { seconds: (performance.now() - t0) / 1000, success: status.success, ...peak };
}
