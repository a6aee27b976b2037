/**
 * Eigen-decomposition of a small symmetric matrix by the cyclic Jacobi method,
 * for fancy PCA's 3x3 colour covariance. Why a solver of our own: TensorFlow.js
 * has no eigen-decomposition (`tf.linalg` holds only QR, Gram-Schmidt and band
 * parts), no well-kept npm package is worth a dependency for a 3x3, and Jacobi
 * rotations on a symmetric matrix converge quadratically to eigenvalues
 * accurate to machine precision with exactly orthonormal eigenvectors, in a few
 * sweeps.
 *
 * @example The eigenvalues of a diagonal matrix are its diagonal
 * ```ts
 * import { symmetricEigen } from "./eigen.ts";
 * const { values } = symmetricEigen([[2, 0], [0, 5]]);
 * if (values[0] !== 5 || values[1] !== 2) throw new Error();
 * ```
 *
 * @module
 */

/** Eigenvalues (descending) and unit eigenvectors (`vectors[k]` goes with `values[k]`). */
export interface Eigen {
  /** Eigenvalues, largest first. */
  values: number[];
  /** Eigenvectors, one per value, of unit length. */
  vectors: number[][];
}

/**
 * Eigenvalues and eigenvectors of a symmetric matrix.
 *
 * @param matrix A square symmetric matrix (rows).
 * @param tolerance Off-diagonal size (relative to the matrix's norm) at which to stop. @default 1e-15
 * @returns The decomposition, values descending.
 * @throws {RangeError} for a matrix that is not square, symmetric and finite.
 */
export function symmetricEigen(matrix: readonly (readonly number[])[], tolerance = 1e-15): Eigen {
  const n = matrix.length;
  const ok = n > 0 && matrix.every((r) => r.length === n && r.every(Number.isFinite)) &&
    matrix.every((r, i) =>
      r.every((v, j) => Math.abs(v - matrix[j][i]) <= 1e-9 * (1 + Math.abs(v)))
    );
  if (!ok) {
    throw new RangeError("symmetricEigen: give a square, symmetric matrix of finite numbers");
  }
  const a = matrix.map((r) => [...r]);
  const v: number[][] = a.map((_, i) => a.map((_, j) => (i === j ? 1 : 0)));
  const norm = Math.sqrt(a.flat().reduce((s, x) => s + x * x, 0)) || 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p][q] ** 2;
    if (Math.sqrt(off) <= tolerance * norm) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (a[p][q] === 0) continue;
        // The rotation that zeroes a[p][q] (Golub & Van Loan, Algorithm 8.4.1).
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq, a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk, a[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p], vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq, v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = a.map((_, i) => i).sort((i, j) => a[j][j] - a[i][i]);
  return {
    values: order.map((i) => a[i][i]),
    vectors: order.map((i) => v.map((row) => row[i])),
  };
}
