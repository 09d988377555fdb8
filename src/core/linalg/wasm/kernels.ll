; Tensor Scalpel — WebAssembly SIMD kernels for the portable eigensolver, hand-written LLVM IR.
; Built here by build-kernels.mjs with LLVM 14 (opt -O3 vectorises the loops, including the
; reassociable reductions, into f64x2 SIMD; llc emits a wasm32 object that imports its linear
; memory and needs no linker). There is no clang here: the kernels are written as scalar IR with
; noalias arguments and `reassoc contract` reductions, which is what the vectoriser needs.
; Kernels: gemv (row-wise dots), sub (compaction), symvu (symmetric y = A v from the upper
; triangle), axpyt / axpyt2 (y -= X^T c over rows of X, one row or a pair of rows per pass).
;
; gemv: y[r] = sum_{c=c0}^{c1-1} t[r*ld + c] * v[c]   for r in [r0, r1)   (float64, row-major t)
; The reduction is reassociated (partial sums per SIMD lane), so the result differs from a
; sequential sum only by rounding of order n * 2^-53 * sum |t v|.
target datalayout = "e-m:e-p:32:32-p10:8:8-p20:8:8-i64:64-n32:64-S128-ni:1:10:20"
target triple = "wasm32-unknown-unknown"

define void @gemv(double* noalias nocapture readonly %t, i32 %ld, double* noalias nocapture readonly %v, double* noalias nocapture %y, i32 %r0, i32 %r1, i32 %c0, i32 %c1) #0 {
entry:
  %rows.ok = icmp slt i32 %r0, %r1
  br i1 %rows.ok, label %row, label %exit
row:
  %r = phi i32 [ %r0, %entry ], [ %r.next, %row.end ]
  %base = mul i32 %r, %ld
  %cols.ok = icmp slt i32 %c0, %c1
  br i1 %cols.ok, label %col, label %row.end
col:
  %c = phi i32 [ %c0, %row ], [ %c.next, %col ]
  %acc = phi double [ 0.0, %row ], [ %acc.next, %col ]
  %idx = add i32 %base, %c
  %pa = getelementptr inbounds double, double* %t, i32 %idx
  %a = load double, double* %pa, align 8
  %pv = getelementptr inbounds double, double* %v, i32 %c
  %b = load double, double* %pv, align 8
  %p = fmul reassoc contract double %a, %b
  %acc.next = fadd reassoc contract double %acc, %p
  %c.next = add nsw i32 %c, 1
  %done = icmp eq i32 %c.next, %c1
  br i1 %done, label %row.end, label %col
row.end:
  %sum = phi double [ 0.0, %row ], [ %acc.next, %col ]
  %py = getelementptr inbounds double, double* %y, i32 %r
  store double %sum, double* %py, align 8
  %r.next = add nsw i32 %r, 1
  %rdone = icmp eq i32 %r.next, %r1
  br i1 %rdone, label %exit, label %row
exit:
  ret void
}

; sub: d[i] = a[i] - b[i] for i in [0, n)   (the compaction step after a trailing GEMM update)
define void @sub(double* nocapture %d, double* nocapture readonly %a, double* noalias nocapture readonly %b, i32 %n) #1 {
entry:
  %ok = icmp sgt i32 %n, 0
  br i1 %ok, label %loop, label %exit
loop:
  %i = phi i32 [ 0, %entry ], [ %i.next, %loop ]
  %pa = getelementptr inbounds double, double* %a, i32 %i
  %x = load double, double* %pa, align 8
  %pb = getelementptr inbounds double, double* %b, i32 %i
  %y = load double, double* %pb, align 8
  %z = fsub double %x, %y
  %pd = getelementptr inbounds double, double* %d, i32 %i
  store double %z, double* %pd, align 8
  %i.next = add nsw i32 %i, 1
  %done = icmp eq i32 %i.next, %n
  br i1 %done, label %exit, label %loop
exit:
  ret void
}

; symvu: y = A v for rows/cols [lo, hi) of a symmetric matrix of which only the UPPER triangle
; (c >= r) of the row-major t (leading dimension ld) is read:
;   y[r] = sum_{c>=r} t[r][c] v[c] + sum_{c<r} t[c][r] v[c].
; Two rows per pass: each t element is loaded once and used twice (dot for y[r], axpy into y[c]),
; so the memory traffic is half that of a full-matrix gemv; y is zeroed here first.
define void @symvu(double* noalias nocapture readonly %t, i32 %ld, double* noalias nocapture readonly %v, double* noalias nocapture %y, i32 %lo, i32 %hi) #2 {
entry:
  %any = icmp slt i32 %lo, %hi
  br i1 %any, label %zero, label %exit
zero:
  %z = phi i32 [ %lo, %entry ], [ %z.next, %zero ]
  %pz = getelementptr inbounds double, double* %y, i32 %z
  store double 0.0, double* %pz, align 8
  %z.next = add nsw i32 %z, 1
  %z.done = icmp eq i32 %z.next, %hi
  br i1 %z.done, label %pairs.pre, label %zero
pairs.pre:
  %hi1 = sub nsw i32 %hi, 1
  br label %pair.check
pair.check:
  %r = phi i32 [ %lo, %pairs.pre ], [ %r.next, %pair.end ]
  %r1 = add nsw i32 %r, 1
  %has.pair = icmp slt i32 %r1, %hi
  br i1 %has.pair, label %pair, label %tail
pair:
  %b0 = mul nsw i32 %r, %ld
  %b1 = add nsw i32 %b0, %ld
  %i00 = add nsw i32 %b0, %r
  %i01 = add nsw i32 %b0, %r1
  %i11 = add nsw i32 %b1, %r1
  %p00 = getelementptr inbounds double, double* %t, i32 %i00
  %p01 = getelementptr inbounds double, double* %t, i32 %i01
  %p11 = getelementptr inbounds double, double* %t, i32 %i11
  %a00 = load double, double* %p00, align 8
  %a01 = load double, double* %p01, align 8
  %a11 = load double, double* %p11, align 8
  %pv0 = getelementptr inbounds double, double* %v, i32 %r
  %pv1 = getelementptr inbounds double, double* %v, i32 %r1
  %v0 = load double, double* %pv0, align 8
  %v1 = load double, double* %pv1, align 8
  %m00 = fmul double %a00, %v0
  %m01 = fmul double %a01, %v1
  %s0 = fadd double %m00, %m01
  %m10 = fmul double %a01, %v0
  %m11 = fmul double %a11, %v1
  %s1 = fadd double %m10, %m11
  %c0 = add nsw i32 %r, 2
  %has.cols = icmp slt i32 %c0, %hi
  br i1 %has.cols, label %col, label %pair.end
col:
  %c = phi i32 [ %c0, %pair ], [ %c.next, %col ]
  %acc0 = phi double [ 0.0, %pair ], [ %acc0.next, %col ]
  %acc1 = phi double [ 0.0, %pair ], [ %acc1.next, %col ]
  %j0 = add nsw i32 %b0, %c
  %j1 = add nsw i32 %b1, %c
  %q0 = getelementptr inbounds double, double* %t, i32 %j0
  %q1 = getelementptr inbounds double, double* %t, i32 %j1
  %x0 = load double, double* %q0, align 8
  %x1 = load double, double* %q1, align 8
  %pvc = getelementptr inbounds double, double* %v, i32 %c
  %vc = load double, double* %pvc, align 8
  %d0 = fmul reassoc contract double %x0, %vc
  %acc0.next = fadd reassoc contract double %acc0, %d0
  %d1 = fmul reassoc contract double %x1, %vc
  %acc1.next = fadd reassoc contract double %acc1, %d1
  %pyc = getelementptr inbounds double, double* %y, i32 %c
  %yc = load double, double* %pyc, align 8
  %e0 = fmul contract double %x0, %v0
  %e1 = fmul contract double %x1, %v1
  %e = fadd contract double %e0, %e1
  %yc.next = fadd contract double %yc, %e
  store double %yc.next, double* %pyc, align 8
  %c.next = add nsw i32 %c, 1
  %c.done = icmp eq i32 %c.next, %hi
  br i1 %c.done, label %pair.end, label %col
pair.end:
  %sum0 = phi double [ 0.0, %pair ], [ %acc0.next, %col ]
  %sum1 = phi double [ 0.0, %pair ], [ %acc1.next, %col ]
  %py0 = getelementptr inbounds double, double* %y, i32 %r
  %py1 = getelementptr inbounds double, double* %y, i32 %r1
  %y0 = load double, double* %py0, align 8
  %y1 = load double, double* %py1, align 8
  %t0 = fadd double %s0, %sum0
  %t1 = fadd double %s1, %sum1
  %y0.next = fadd double %y0, %t0
  %y1.next = fadd double %y1, %t1
  store double %y0.next, double* %py0, align 8
  store double %y1.next, double* %py1, align 8
  %r.next = add nsw i32 %r, 2
  br label %pair.check
tail:
  %odd = icmp eq i32 %r, %hi1
  br i1 %odd, label %last, label %exit
last:
  %bl = mul nsw i32 %r, %ld
  %il = add nsw i32 %bl, %r
  %pl = getelementptr inbounds double, double* %t, i32 %il
  %al = load double, double* %pl, align 8
  %pvl = getelementptr inbounds double, double* %v, i32 %r
  %vl = load double, double* %pvl, align 8
  %pyl = getelementptr inbounds double, double* %y, i32 %r
  %yl = load double, double* %pyl, align 8
  %ml = fmul double %al, %vl
  %yl.next = fadd double %yl, %ml
  store double %yl.next, double* %pyl, align 8
  br label %exit
exit:
  ret void
}

; axpyt: y[r] -= sum_{p<k} x[p*ld + r] * coef[p]   for r in [r0, r1)
; (y <- y - X^T coef with X stored as k rows of length ld: the panel's V^T / W^T).
define void @axpyt(double* noalias nocapture readonly %x, i32 %ld, double* noalias nocapture readonly %coef, double* noalias nocapture %y, i32 %k, i32 %r0, i32 %r1) #3 {
entry:
  %kok = icmp sgt i32 %k, 0
  %rok = icmp slt i32 %r0, %r1
  %ok = and i1 %kok, %rok
  br i1 %ok, label %prow, label %exit
prow:
  %p = phi i32 [ 0, %entry ], [ %p.next, %prow.end ]
  %pc = getelementptr inbounds double, double* %coef, i32 %p
  %cf = load double, double* %pc, align 8
  %base = mul nsw i32 %p, %ld
  br label %loop
loop:
  %r = phi i32 [ %r0, %prow ], [ %r.next, %loop ]
  %ix = add nsw i32 %base, %r
  %px = getelementptr inbounds double, double* %x, i32 %ix
  %xv = load double, double* %px, align 8
  %py = getelementptr inbounds double, double* %y, i32 %r
  %yv = load double, double* %py, align 8
  %m = fmul contract double %xv, %cf
  %yn = fsub contract double %yv, %m
  store double %yn, double* %py, align 8
  %r.next = add nsw i32 %r, 1
  %rdone = icmp eq i32 %r.next, %r1
  br i1 %rdone, label %prow.end, label %loop
prow.end:
  %p.next = add nsw i32 %p, 1
  %pdone = icmp eq i32 %p.next, %k
  br i1 %pdone, label %exit, label %prow
exit:
  ret void
}

; axpyt2: y[r] -= sum_{p<k} (x[(2p)*ld + r] * coef[2p] + x[(2p+1)*ld + r] * coef[2p+1])   for r in [r0, r1)
; (axpyt over k PAIRS of rows: one pass over y per pair; the panel keeps V^T and W^T rows interleaved).
define void @axpyt2(double* noalias nocapture readonly %x, i32 %ld, double* noalias nocapture readonly %coef, double* noalias nocapture %y, i32 %k, i32 %r0, i32 %r1) #4 {
entry:
  %kok = icmp sgt i32 %k, 0
  %rok = icmp slt i32 %r0, %r1
  %ok = and i1 %kok, %rok
  br i1 %ok, label %prow, label %exit
prow:
  %p = phi i32 [ 0, %entry ], [ %p.next, %prow.end ]
  %p2 = shl nsw i32 %p, 1
  %p21 = or i32 %p2, 1
  %pc0 = getelementptr inbounds double, double* %coef, i32 %p2
  %pc1 = getelementptr inbounds double, double* %coef, i32 %p21
  %cf0 = load double, double* %pc0, align 8
  %cf1 = load double, double* %pc1, align 8
  %base0 = mul nsw i32 %p2, %ld
  %base1 = add nsw i32 %base0, %ld
  br label %loop
loop:
  %r = phi i32 [ %r0, %prow ], [ %r.next, %loop ]
  %ix0 = add nsw i32 %base0, %r
  %ix1 = add nsw i32 %base1, %r
  %px0 = getelementptr inbounds double, double* %x, i32 %ix0
  %px1 = getelementptr inbounds double, double* %x, i32 %ix1
  %xv0 = load double, double* %px0, align 8
  %xv1 = load double, double* %px1, align 8
  %py = getelementptr inbounds double, double* %y, i32 %r
  %yv = load double, double* %py, align 8
  %m0 = fmul contract double %xv0, %cf0
  %m1 = fmul contract double %xv1, %cf1
  %m = fadd contract double %m0, %m1
  %yn = fsub contract double %yv, %m
  store double %yn, double* %py, align 8
  %r.next = add nsw i32 %r, 1
  %rdone = icmp eq i32 %r.next, %r1
  br i1 %rdone, label %prow.end, label %loop
prow.end:
  %p.next = add nsw i32 %p, 1
  %pdone = icmp eq i32 %p.next, %k
  br i1 %pdone, label %exit, label %prow
exit:
  ret void
}

attributes #0 = { nounwind "no-builtins" "wasm-export-name"="gemv" "target-features"="+simd128" }
attributes #1 = { nounwind "no-builtins" "wasm-export-name"="sub" "target-features"="+simd128" }
attributes #2 = { nounwind "no-builtins" "wasm-export-name"="symvu" "target-features"="+simd128" }
attributes #3 = { nounwind "no-builtins" "wasm-export-name"="axpyt" "target-features"="+simd128" }
attributes #4 = { nounwind "no-builtins" "wasm-export-name"="axpyt2" "target-features"="+simd128" }
