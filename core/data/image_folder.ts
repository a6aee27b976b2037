/**
 * A folder of images with one subfolder per class (the ImageFolder convention
 * of torchvision and Keras's `image_dataset_from_directory`) as a
 * {@linkcode DataSource}: classes are the subfolder names in sorted order,
 * examples the PNG and JPEG files in each, sorted by name, so the index of an
 * example is the same on every machine. Images are decoded and resized only
 * when a batch asks for them.
 *
 * @example A folder of two classes
 * ```ts ignore
 * import { imageFolder } from "./image_folder.ts";
 * const data = await imageFolder("photos", { height: 224, width: 224, channels: 3 });
 * console.log(data.size, data.classes); // e.g. 120 ["cat", "dog"]
 * ```
 *
 * @module
 */
import { tf } from "../tf.ts";
import { rawToTensor, readImage } from "../images/codecs.ts";
import { resize } from "../images/display.ts";
import { checkIndices, type DataSource } from "./source.ts";

/** Options of {@linkcode imageFolder}. */
export interface ImageFolderOptions {
  /** Height every image is resized to. */
  height: number;
  /** Width every image is resized to. */
  width: number;
  /** 1 (grey) or 3 (RGB). @default 3 */
  channels?: 1 | 3;
}

const IMAGE = /\.(png|jpe?g)$/i;

/**
 * Lists a class-per-subfolder image folder as a source.
 *
 * @param dir The folder.
 * @param options The size images are resized to, and their channels.
 * @returns The source, pixels in [0, 1].
 * @throws {Error} when the folder has no class subfolders with images, naming the layout expected.
 */
export async function imageFolder(dir: string, options: ImageFolderOptions): Promise<DataSource> {
  const channels = options.channels ?? 3;
  const { height, width } = options;
  if (!(Number.isInteger(height) && height > 0 && Number.isInteger(width) && width > 0)) {
    throw new RangeError(`image size ${height}x${width} is invalid: give positive integers`);
  }
  const root = dir.replace(/\/+$/, "");
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(root));
  } catch (err) {
    throw new Error(`cannot read the image folder ${root}: ${(err as Error).message}`);
  }
  const classes = entries.filter((e) => e.isDirectory && !e.name.startsWith(".")).map((e) => e.name)
    .sort();
  const files: string[] = [];
  const labels: number[] = [];
  for (const [c, name] of classes.entries()) {
    const inside = (await Array.fromAsync(Deno.readDir(`${root}/${name}`)))
      .filter((e) => e.isFile && IMAGE.test(e.name)).map((e) => e.name).sort();
    for (const f of inside) {
      files.push(`${root}/${name}/${f}`);
      labels.push(c);
    }
  }
  if (files.length === 0) {
    throw new Error(
      `${root} holds no images in class subfolders: give a folder with one subfolder per ` +
        "class (e.g. data/cat/1.png, data/dog/2.jpg)",
    );
  }
  const source: DataSource = {
    name: `image folder ${root}`,
    size: files.length,
    shape: [height, width, channels],
    classes,
    range: [0, 1],
    labelOf: (i) => labels[i],
    async batch(indices) {
      checkIndices(source, indices);
      const images = await Promise.all(indices.map((i) => readImage(files[i])));
      return tf.tidy(() => ({
        x: tf.stack(
          images.map((img) => {
            const t = rawToTensor(img, channels);
            return t.shape[0] === height && t.shape[1] === width ? t : resize(t, height, width);
          }),
        ) as tf.Tensor4D,
        y: tf.tensor1d(Int32Array.from(indices, (i) => labels[i]), "int32"),
      }));
    },
  };
  return source;
}
