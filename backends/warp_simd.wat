;; The inner loops of backends/warp_kernels.ts in WebAssembly SIMD, run on the
;; WASM backend's own memory (imported), so tensors are read and written where
;; they live. Built into backends/_warp_simd.ts by `deno task build-wasm`.
;;
;; All addresses are byte offsets in that memory; pixels are c float32 values,
;; c <= 4, moved as one 4-lane vector (lanes past c are scratch).
(module
  (import "env" "memory" (memory 1))

  ;; Pixels of 3 floats (12 bytes), n of them from src, written reversed at dst:
  ;; dst pixel k = src pixel n - 1 - k. The row is first copied forward to tmp
  ;; (n * 12 bytes): read backwards straight from a row far from the caches,
  ;; the loop ran 2.5x slower than a copy; from tmp it runs near a copy's
  ;; speed. Four pixels (12 floats, 0-11) a turn: the output vectors are
  ;; floats [9 10 11 6], [7 8 3 4] and [5 0 1 2], each taken from two
  ;; overlapping loads inside the four pixels by one shuffle.
  (func (export "mirror3") (param $src i32) (param $dst i32) (param $n i32) (param $tmp i32)
    (local $s i32) (local $k i32) (local $from i32) (local $to i32) (local $left i32)
    (local.set $from (local.get $src))
    (local.set $to (local.get $tmp))
    (local.set $left (i32.mul (local.get $n) (i32.const 12)))
    (block $copied
      (loop $vec
        (br_if $copied (i32.lt_s (local.get $left) (i32.const 16)))
        (v128.store (local.get $to) (v128.load (local.get $from)))
        (local.set $from (i32.add (local.get $from) (i32.const 16)))
        (local.set $to (i32.add (local.get $to) (i32.const 16)))
        (local.set $left (i32.sub (local.get $left) (i32.const 16)))
        (br $vec)))
    (block $tail
      (loop $word
        (br_if $tail (i32.le_s (local.get $left) (i32.const 0)))
        (i32.store (local.get $to) (i32.load (local.get $from)))
        (local.set $from (i32.add (local.get $from) (i32.const 4)))
        (local.set $to (i32.add (local.get $to) (i32.const 4)))
        (local.set $left (i32.sub (local.get $left) (i32.const 4)))
        (br $word)))
    (local.set $src (local.get $tmp))
    (local.set $s (i32.add (local.get $src) (i32.mul (i32.sub (local.get $n) (i32.const 4)) (i32.const 12))))
    (block $done
      (loop $four
        (br_if $done (i32.lt_s (local.get $n) (i32.const 4)))
        (v128.store (local.get $dst)
          (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
            (v128.load offset=32 (local.get $s)) (v128.load offset=24 (local.get $s))))
        (v128.store offset=16 (local.get $dst)
          (i8x16.shuffle 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23
            (v128.load offset=20 (local.get $s)) (v128.load offset=12 (local.get $s))))
        (v128.store offset=32 (local.get $dst)
          (i8x16.shuffle 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27
            (v128.load offset=8 (local.get $s)) (v128.load (local.get $s))))
        (local.set $s (i32.sub (local.get $s) (i32.const 48)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 48)))
        (local.set $n (i32.sub (local.get $n) (i32.const 4)))
        (br $four)))
    ;; The first n < 4 source pixels remain, still to be reversed.
    (local.set $k (i32.const 0))
    (block $end
      (loop $one
        (br_if $end (i32.ge_s (local.get $k) (local.get $n)))
        (local.set $s (i32.add (local.get $src)
          (i32.mul (i32.sub (i32.sub (local.get $n) (i32.const 1)) (local.get $k)) (i32.const 12))))
        (i64.store (local.get $dst) (i64.load (local.get $s)))
        (i32.store offset=8 (local.get $dst) (i32.load offset=8 (local.get $s)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 12)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $one))))

  ;; n bytes (a multiple of 4) from src to dst, forward (no overlap), 64 a
  ;; turn; TypedArray.set on the heap ran this at half the speed here.
  (func (export "copy") (param $src i32) (param $dst i32) (param $n i32)
    (block $done
      (loop $big
        (br_if $done (i32.lt_s (local.get $n) (i32.const 64)))
        (v128.store (local.get $dst) (v128.load (local.get $src)))
        (v128.store offset=16 (local.get $dst) (v128.load offset=16 (local.get $src)))
        (v128.store offset=32 (local.get $dst) (v128.load offset=32 (local.get $src)))
        (v128.store offset=48 (local.get $dst) (v128.load offset=48 (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 64)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 64)))
        (local.set $n (i32.sub (local.get $n) (i32.const 64)))
        (br $big)))
    (block $end
      (loop $small
        (br_if $end (i32.le_s (local.get $n) (i32.const 0)))
        (i32.store (local.get $dst) (i32.load (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (local.set $n (i32.sub (local.get $n) (i32.const 4)))
        (br $small))))

  ;; Four floats at p, reading nothing at or past end (those lanes are 0).
  (func $load (param $p i32) (param $end i32) (result v128)
    (local $v v128)
    (if (result v128) (i32.le_u (i32.add (local.get $p) (i32.const 16)) (local.get $end))
      (then (v128.load (local.get $p)))
      (else
        (local.set $v (v128.const f32x4 0 0 0 0))
        (if (i32.lt_u (local.get $p) (local.get $end))
          (then (local.set $v (f32x4.replace_lane 0 (local.get $v) (f32.load (local.get $p))))))
        (if (i32.lt_u (i32.add (local.get $p) (i32.const 4)) (local.get $end))
          (then (local.set $v (f32x4.replace_lane 1 (local.get $v) (f32.load offset=4 (local.get $p))))))
        (if (i32.lt_u (i32.add (local.get $p) (i32.const 8)) (local.get $end))
          (then (local.set $v (f32x4.replace_lane 2 (local.get $v) (f32.load offset=8 (local.get $p))))))
        (local.get $v))))

  ;; One source row resampled along x: out pixel j (at out + j step) =
  ;; row[xa] wa + row[xb] wb, with taps j = (xa, xb: byte offsets in the row;
  ;; wa, wb: f32) at taps + 16 j. Writes 4 lanes per pixel, so out needs 16
  ;; bytes past its last pixel; reads nothing at or past end.
  (func (export "hrow") (param $row i32) (param $out i32) (param $taps i32) (param $cols i32)
      (param $step i32) (param $end i32)
    (local $stop i32)
    (local.set $stop (i32.add (local.get $taps) (i32.mul (local.get $cols) (i32.const 16))))
    (block $done
      (loop $col
        (br_if $done (i32.ge_u (local.get $taps) (local.get $stop)))
        (v128.store (local.get $out)
          (f32x4.add
            (f32x4.mul
              (call $load (i32.add (local.get $row) (i32.load (local.get $taps))) (local.get $end))
              (f32x4.splat (f32.load offset=8 (local.get $taps))))
            (f32x4.mul
              (call $load (i32.add (local.get $row) (i32.load offset=4 (local.get $taps))) (local.get $end))
              (f32x4.splat (f32.load offset=12 (local.get $taps))))))
        (local.set $out (i32.add (local.get $out) (local.get $step)))
        (local.set $taps (i32.add (local.get $taps) (i32.const 16)))
        (br $col))))

;; hrow where every tap reads 16 bytes inside memory the row may read
  ;; (all but the last row of a tensor): no checks.
  (func (export "hrow_fast") (param $row i32) (param $out i32) (param $taps i32) (param $cols i32)
      (param $step i32)
    (local $stop i32)
    (local.set $stop (i32.add (local.get $taps) (i32.mul (local.get $cols) (i32.const 16))))
    (block $done
      (loop $col
        (br_if $done (i32.ge_u (local.get $taps) (local.get $stop)))
        (v128.store (local.get $out)
          (f32x4.add
            (f32x4.mul
              (v128.load (i32.add (local.get $row) (i32.load (local.get $taps))))
              (f32x4.splat (f32.load offset=8 (local.get $taps))))
            (f32x4.mul
              (v128.load (i32.add (local.get $row) (i32.load offset=4 (local.get $taps))))
              (f32x4.splat (f32.load offset=12 (local.get $taps))))))
        (local.set $out (i32.add (local.get $out) (local.get $step)))
        (local.set $taps (i32.add (local.get $taps) (i32.const 16)))
        (br $col))))

  ;; dst[k] = a[k] p + b[k] q for k < len floats (contiguous rows).
  (func (export "blend") (param $a i32) (param $b i32) (param $p f32) (param $q f32) (param $dst i32)
      (param $len i32)
    (local $vp v128) (local $vq v128)
    (local.set $vp (f32x4.splat (local.get $p)))
    (local.set $vq (f32x4.splat (local.get $q)))
    (block $done
      (loop $four
        (br_if $done (i32.lt_s (local.get $len) (i32.const 4)))
        (v128.store (local.get $dst)
          (f32x4.add (f32x4.mul (v128.load (local.get $a)) (local.get $vp))
            (f32x4.mul (v128.load (local.get $b)) (local.get $vq))))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (local.set $b (i32.add (local.get $b) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (local.set $len (i32.sub (local.get $len) (i32.const 4)))
        (br $four)))
    (block $end
      (loop $one
        (br_if $end (i32.le_s (local.get $len) (i32.const 0)))
        (f32.store (local.get $dst)
          (f32.add (f32.mul (f32.load (local.get $a)) (local.get $p))
            (f32.mul (f32.load (local.get $b)) (local.get $q))))
        (local.set $a (i32.add (local.get $a) (i32.const 4)))
        (local.set $b (i32.add (local.get $b) (i32.const 4)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $one)))))
