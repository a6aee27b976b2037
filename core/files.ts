/**
 * Writing output files so that a failure never leaves a half-written one: write
 * to a temporary file in the same folder, then rename it into place.
 *
 * @module
 */

/**
 * Writes bytes or text to `path` atomically, creating parent folders.
 *
 * @param path Destination file.
 * @param data Bytes or text.
 * @returns When the file is in place.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash > 0 ? path.slice(0, slash) : ".";
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${dir}/.${path.slice(slash + 1)}.${crypto.randomUUID()}.tmp`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}
