/**
 * Typed parameter schemas for plugins. One schema drives the TypeScript type of a
 * plugin's parameters, the CLI's parsing, validation with clear errors, and the
 * `--help` text.
 *
 * @module
 */

/** A number (`integer: true` for whole numbers) with an optional range. */
export interface NumberParam {
  /** Kind of value. */
  type: "number" | "integer";
  /** Value when not given. */
  default?: number;
  /** Smallest allowed value. */
  min?: number;
  /** Largest allowed value. */
  max?: number;
  /** One line of help. */
  help: string;
}

/** A flag. */
export interface BooleanParam {
  /** Kind of value. */
  type: "boolean";
  /** Value when not given. */
  default?: boolean;
  /** One line of help. */
  help: string;
}

/** Free text. */
export interface StringParam {
  /** Kind of value. */
  type: "string";
  /** Value when not given. */
  default?: string;
  /** One line of help. */
  help: string;
}

/** One of a fixed list. */
export interface EnumParam {
  /** Kind of value. */
  type: "enum";
  /** The allowed values. */
  choices: readonly string[];
  /** Value when not given. */
  default?: string;
  /** One line of help. */
  help: string;
}

/** A layer name of the model (checked against it). */
export interface LayerParam {
  /** Kind of value. */
  type: "layer";
  /** Value when not given. */
  default?: string;
  /** One line of help. */
  help: string;
}

/** A list of numbers, written `1,2,3` on the command line. */
export interface NumbersParam {
  /** Kind of value. */
  type: "numbers";
  /** Value when not given. */
  default?: number[];
  /** One line of help. */
  help: string;
}

/** Any parameter. */
export type ParamSpec =
  | NumberParam
  | BooleanParam
  | StringParam
  | EnumParam
  | LayerParam
  | NumbersParam;

/** A plugin's parameters by name. */
export type ParamSchema = Record<string, ParamSpec>;

/** The value type of one parameter spec. */
export type ValueOf<P extends ParamSpec> = P extends NumberParam ? number
  : P extends BooleanParam ? boolean
  : P extends EnumParam ? P["choices"][number]
  : P extends NumbersParam ? number[]
  : string;

/** The parameter values a plugin's `run` receives, typed from its schema. */
export type ParamValues<S extends ParamSchema> = {
  [K in keyof S]: S[K] extends { default: unknown } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined;
};

/** Error for a bad parameter value; the CLI maps it to exit code 2. */
export class ParamError extends RangeError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ParamError";
  }
}

function describeRange(p: NumberParam): string {
  const kind = p.type === "integer" ? "an integer" : "a number";
  if (p.min !== undefined && p.max !== undefined) return `${kind} from ${p.min} to ${p.max}`;
  if (p.min !== undefined) return `${kind} >= ${p.min}`;
  if (p.max !== undefined) return `${kind} <= ${p.max}`;
  return kind;
}

/** The type, default and range of a parameter, as `--help` shows it. */
export function describeParam(p: ParamSpec): string {
  const parts: string[] = [];
  if (p.type === "number" || p.type === "integer") parts.push(describeRange(p));
  else if (p.type === "enum") parts.push(`one of ${p.choices.join(" | ")}`);
  else if (p.type === "numbers") parts.push("numbers, comma-separated");
  else if (p.type === "layer") parts.push("layer name");
  else parts.push(p.type);
  if (p.default !== undefined) {
    parts.push(`default ${Array.isArray(p.default) ? p.default.join(",") : p.default}`);
  }
  return parts.join(", ");
}

function coerce(owner: string, name: string, p: ParamSpec, raw: unknown): unknown {
  const bad = (what: string) =>
    new ParamError(
      `Parameter --${name} of ${owner} must be ${what}, got ${JSON.stringify(raw)}`,
    );
  switch (p.type) {
    case "number":
    case "integer": {
      const v = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
      if (typeof v !== "number" || !Number.isFinite(v)) throw bad(describeRange(p));
      if (p.type === "integer" && !Number.isInteger(v)) throw bad(describeRange(p));
      if ((p.min !== undefined && v < p.min) || (p.max !== undefined && v > p.max)) {
        throw bad(describeRange(p));
      }
      return v;
    }
    case "boolean": {
      if (typeof raw === "boolean") return raw;
      if (raw === "true" || raw === "1" || raw === "") return true;
      if (raw === "false" || raw === "0") return false;
      throw bad("true or false");
    }
    case "enum": {
      if (typeof raw !== "string" || !p.choices.includes(raw)) {
        throw bad(`one of ${p.choices.join(", ")}`);
      }
      return raw;
    }
    case "numbers": {
      const list = Array.isArray(raw)
        ? raw
        : typeof raw === "string"
        ? raw.split(",").filter((s) => s.trim() !== "").map(Number)
        : typeof raw === "number"
        ? [raw]
        : undefined;
      if (!list || list.some((v) => typeof v !== "number" || !Number.isFinite(v))) {
        throw bad("a comma-separated list of numbers");
      }
      return list;
    }
    default: {
      if (typeof raw !== "string" || raw === "") throw bad("a non-empty string");
      return raw;
    }
  }
}

/**
 * Checks and fills in parameters: unknown names, types, ranges and choices; the
 * defaults of the ones not given; layer names against the model's layers.
 *
 * @param owner The plugin's name, for messages.
 * @param schema Its parameter schema.
 * @param raw Given values (strings from the CLI are converted).
 * @param layerNames The model's layer names, to check `layer` parameters.
 * @returns The complete, checked values.
 * @throws {ParamError} naming the parameter and what it must be.
 */
export function resolveParams<S extends ParamSchema>(
  owner: string,
  schema: S,
  raw: Record<string, unknown>,
  layerNames?: readonly string[],
): ParamValues<S> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(raw)) {
    if (!(key in schema)) {
      const known = Object.keys(schema);
      throw new ParamError(
        `Unknown parameter --${key} for ${owner}: it takes ${
          known.length ? known.map((k) => `--${k}`).join(", ") : "no parameters"
        }`,
      );
    }
  }
  for (const [name, spec] of Object.entries(schema)) {
    const given = raw[name];
    const value = given === undefined ? spec.default : coerce(owner, name, spec, given);
    if (spec.type === "layer" && value !== undefined && layerNames) {
      if (!layerNames.includes(value as string)) {
        throw new ParamError(
          `Parameter --${name} of ${owner}: the model has no layer "${value}"; layers: ${
            layerNames.join(", ")
          }`,
        );
      }
    }
    out[name] = Array.isArray(value) ? [...value] : value;
  }
  return out as ParamValues<S>;
}
