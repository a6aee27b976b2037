/**
 * An output folder that receives a run's files as one set: they are written into
 * a staging folder inside it and moved in together at the end, under a lock, so
 * that a failed, interrupted or concurrent run never leaves a half-written set, a
 * temporary file or a set mixed from two runs. The folder is checked (empty or
 * root path, a file, under a file, not writable, no write permission) before any
 * work starts.
 *
 * @example Write two files as one set
 * ```ts
 * import { OutDir } from "./out_dir.ts";
 * const root = await Deno.makeTempDir();
 * const out = await OutDir.open(`${root}/out`);
 * await Deno.writeTextFile(`${out.staging}/a.json`, "{}");
 * await Deno.writeTextFile(`${out.staging}/b.json`, "{}");
 * const moved = await out.commit([`${out.staging}/a.json`, `${out.staging}/b.json`]);
 * if (moved[0] !== `${root}/out/a.json`) throw new Error(moved[0]);
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @module
 */

/** Error for an output folder that cannot be used as given (a usage error). */
export class OutDirError extends RangeError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "OutDirError";
  }
}

/** Options of {@linkcode OutDir.open}. */
export interface OutDirOptions {
  /**
   * Remove the staging folder (and the folders made for it) when the process
   * gets SIGINT or SIGTERM, then exit with 130 or 143.
   * @default false
   */
  signals?: boolean;
  /** How the folder is named in messages. @default "--out" */
  flag?: string;
  /**
   * The command writing, e.g. `lens grad-cam` or `demo`. A folder remembers the
   * command that last wrote it (in `.convlens-run.json`); another command is
   * refused there, and no run replaces a file it did not write itself, unless
   * `force`.
   * @default "convlens"
   */
  owner?: string;
  /** Replace another run's files. @default false */
  force?: boolean;
}

/** What a folder remembers of the run that wrote it. */
interface Manifest {
  owner: string;
  files: string[];
}

const MANIFEST = ".convlens-run.json";

async function readManifest(dir: string): Promise<Manifest | undefined> {
  try {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/${MANIFEST}`));
    if (typeof m?.owner === "string" && Array.isArray(m.files)) return m as Manifest;
  } catch {
    // None, or unreadable: treated as a folder no convlens run wrote.
  }
  return undefined;
}

function anotherRun(flag: string, path: string, owner: string, files: string[]): OutDirError {
  const shown = files.slice(0, 3).join(", ") + (files.length > 3 ? ", ..." : "");
  return new OutDirError(
    `${flag} "${path}" holds the files of another run (${owner}: ${shown}); give another ` +
      `${flag}, or pass --force to replace them`,
  );
}

const LOCK = ".convlens.lock";
const STAGING_PREFIX = ".convlens-staging-";

function absolute(path: string): string {
  const joined = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  const parts: string[] = [];
  for (const p of joined.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return `/${parts.join("/")}`;
}

function permissionError(flag: string, path: string, what: "read" | "write"): OutDirError {
  return new OutDirError(
    `Cannot ${what} ${flag} "${path}": no ${what} permission; ` +
      `run with --allow-${what}=${path} (or use deno task lens)`,
  );
}

async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    // A path under a file is "not a directory": the walk up finds the file.
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw err;
  }
}

/**
 * Checks that `path` can be an output folder, without creating anything: not
 * empty, not the filesystem root, not a file, not under a file.
 *
 * @param path The folder.
 * @param flag How it is named in messages.
 * @returns The folders that do not exist yet, outermost first.
 * @throws {OutDirError} naming the problem and what to give instead.
 */
export async function checkOutDir(path: string, flag = "--out"): Promise<string[]> {
  if (typeof path !== "string" || path.trim() === "") {
    throw new OutDirError(`${flag} is empty: give a folder, such as ${flag} out`);
  }
  const abs = absolute(path);
  if (abs === "/") {
    throw new OutDirError(
      `${flag} "${path}" is the filesystem root: give a folder of its own, such as ${flag} out`,
    );
  }
  const missing: string[] = [];
  let at = abs;
  while (at !== "/") {
    let info: Deno.FileInfo | undefined;
    try {
      info = await statOrUndefined(at);
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable) throw permissionError(flag, path, "read");
      throw err;
    }
    if (info) {
      if (info.isDirectory) break;
      throw new OutDirError(
        at === abs
          ? `${flag} "${path}" is a file: give a folder (or move the file away)`
          : `${flag} "${path}" is under "${at}", which is a file: give a folder path ` +
            "whose parents are folders",
      );
    }
    missing.unshift(at);
    at = at.slice(0, at.lastIndexOf("/")) || "/";
  }
  return missing;
}

function processAlive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch (err) {
    // Without /proc (or the right to read it) a lock is taken to be held.
    return !(err instanceof Deno.errors.NotFound) || !existsSync("/proc/self");
  }
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * A run's output folder: files go into {@linkcode OutDir.staging} and
 * {@linkcode OutDir.commit} moves them into {@linkcode OutDir.path} together;
 * {@linkcode OutDir.abort} removes everything the run made.
 */
export class OutDir {
  /** The output folder as given. */
  readonly path: string;
  /** The staging folder inside it, where the run writes. */
  readonly staging: string;
  readonly #lock: string;
  readonly #created: string[];
  readonly #flag: string;
  readonly #owner: string;
  readonly #force: boolean;
  readonly #manifest: Manifest | undefined;
  #signals: [Deno.Signal, () => void][] = [];
  #done = false;

  private constructor(
    path: string,
    staging: string,
    created: string[],
    options: { flag: string; owner: string; force: boolean; manifest?: Manifest },
  ) {
    this.path = path;
    this.staging = staging;
    this.#lock = `${path}/${LOCK}`;
    this.#created = created;
    this.#flag = options.flag;
    this.#owner = options.owner;
    this.#force = options.force;
    this.#manifest = options.manifest;
  }

  /**
   * Checks the folder, creates it if missing, takes its lock and makes the
   * staging folder.
   *
   * @param path The output folder.
   * @param options Signal handling and naming.
   * @returns The open folder; finish with {@linkcode OutDir.commit} or {@linkcode OutDir.abort}.
   * @throws {OutDirError} for an unusable folder, a missing permission, or
   *   another run holding its lock.
   */
  static async open(path: string, options: OutDirOptions = {}): Promise<OutDir> {
    const flag = options.flag ?? "--out";
    const missing = await checkOutDir(path, flag);
    const dir = path.replace(/\/+$/, "") || "/";
    const created: string[] = [];
    const undo = async () => {
      for (const d of [...created].reverse()) await Deno.remove(d).catch(() => {});
    };
    try {
      for (const d of missing) {
        await Deno.mkdir(d);
        created.push(d);
      }
      await takeLock(`${dir}/${LOCK}`, path, flag);
    } catch (err) {
      await undo();
      throw describeWriteError(err, flag, path);
    }
    const owner = options.owner ?? "convlens";
    const force = options.force ?? false;
    const manifest = await readManifest(dir);
    // Refused before any work: the folder belongs to another command's run.
    if (manifest && manifest.owner !== owner && !force && manifest.files.length) {
      await Deno.remove(`${dir}/${LOCK}`).catch(() => {});
      await undo();
      throw anotherRun(flag, path, manifest.owner, manifest.files);
    }
    const staging = `${dir}/${STAGING_PREFIX}${crypto.randomUUID()}`;
    try {
      await Deno.mkdir(staging);
    } catch (err) {
      await Deno.remove(`${dir}/${LOCK}`).catch(() => {});
      await undo();
      throw describeWriteError(err, flag, path);
    }
    const out = new OutDir(dir, staging, created, { flag, owner, force, manifest });
    if (options.signals) out.#listen();
    return out;
  }

  #listen(): void {
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
      const handler = () => {
        this.abortSync();
        Deno.exit(code);
      };
      try {
        Deno.addSignalListener(signal, handler);
        this.#signals.push([signal, handler]);
      } catch {
        // Not every platform has every signal (Windows has no SIGTERM).
      }
    }
  }

  #unlisten(): void {
    for (const [signal, handler] of this.#signals) Deno.removeSignalListener(signal, handler);
    this.#signals = [];
  }

  /**
   * Moves the staged files into the output folder (replacing files of the same
   * name), then removes the staging folder and the lock.
   *
   * @param written Paths written under {@linkcode OutDir.staging}, to map to their final place.
   * @returns Those paths in the output folder.
   */
  async commit(written: readonly string[] = []): Promise<string[]> {
    if (this.#done) throw new Error(`The output folder ${this.path} is already closed`);
    const names = (await Array.fromAsync(Deno.readDir(this.staging))).map((e) => e.name);
    const mine = new Set(this.#manifest?.owner === this.#owner ? this.#manifest.files : []);
    if (!this.#force) {
      // A file of the same name that this command did not write is someone else's.
      const clash: string[] = [];
      for (const n of names) {
        if (!mine.has(n) && (await statOrUndefined(`${this.path}/${n}`))) clash.push(n);
      }
      if (clash.length) {
        await this.abort();
        throw anotherRun(this.#flag, this.path, this.#manifest?.owner ?? "not convlens", clash);
      }
    }
    try {
      const kept = this.#manifest?.owner === this.#owner ? this.#manifest.files : [];
      const manifest: Manifest = { owner: this.#owner, files: [...new Set([...kept, ...names])] };
      await Deno.writeTextFile(`${this.staging}/${MANIFEST}`, JSON.stringify(manifest) + "\n");
      for await (const e of Deno.readDir(this.staging)) {
        const from = `${this.staging}/${e.name}`;
        const to = `${this.path}/${e.name}`;
        if (e.isDirectory) await Deno.remove(to, { recursive: true }).catch(() => {});
        await Deno.rename(from, to);
      }
    } catch (err) {
      await this.abort();
      throw describeWriteError(err, this.#flag, this.path);
    }
    this.#done = true;
    this.#unlisten();
    await Deno.remove(this.staging, { recursive: true }).catch(() => {});
    await Deno.remove(this.#lock).catch(() => {});
    return written.map((p) =>
      p.startsWith(`${this.staging}/`) ? `${this.path}/${p.slice(this.staging.length + 1)}` : p
    );
  }

  /** Removes the staging folder, the lock and the folders made for the run. */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    this.#unlisten();
    await Deno.remove(this.staging, { recursive: true }).catch(() => {});
    await Deno.remove(this.#lock).catch(() => {});
    for (const d of [...this.#created].reverse()) await Deno.remove(d).catch(() => {});
  }

  /** {@linkcode OutDir.abort}, synchronously (for signal handlers that exit). */
  abortSync(): void {
    if (this.#done) return;
    this.#done = true;
    this.#unlisten();
    const quiet = (f: () => void) => {
      try {
        f();
      } catch {
        // Already gone, or never made.
      }
    };
    quiet(() => Deno.removeSync(this.staging, { recursive: true }));
    quiet(() => Deno.removeSync(this.#lock));
    for (const d of [...this.#created].reverse()) quiet(() => Deno.removeSync(d));
  }
}

async function takeLock(lock: string, path: string, flag: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const f = await Deno.open(lock, { createNew: true, write: true });
      try {
        await f.write(new TextEncoder().encode(`${Deno.pid}\n`));
      } finally {
        f.close();
      }
      return;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      const pid = Number((await Deno.readTextFile(lock).catch(() => "")).trim());
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
        throw new OutDirError(
          `Another convlens run (process ${pid}) is writing into ${flag} "${path}": ` +
            `wait for it to finish or give another ${flag}`,
        );
      }
      // A lock left by a run that was killed outright: take it over.
      await Deno.remove(lock).catch(() => {});
    }
  }
  throw new OutDirError(`Cannot take the lock ${lock}: another run keeps taking it`);
}

function describeWriteError(err: unknown, flag: string, path: string): Error {
  if (err instanceof OutDirError) return err;
  if (err instanceof Deno.errors.NotCapable) return permissionError(flag, path, "write");
  if (err instanceof Deno.errors.PermissionDenied) {
    return new OutDirError(
      `Cannot write into ${flag} "${path}": permission denied by the file system; ` +
        `give a folder you can write to`,
    );
  }
  if (err instanceof Error) {
    return new Error(`Cannot write into ${flag} "${path}": ${err.message}`);
  }
  return new Error(`Cannot write into ${flag} "${path}": ${String(err)}`);
}
