; Tensor Scalpel — WebAssembly SIMD kernels for the portable eigensolver, hand-written LLVM IR.
; Built here by build-kernels.mjs with LLVM 14 (opt -O3 vectorises the reassociable reduction
; into f64x2 SIMD; llc emits a wasm32 object that imports its linear memory and needs no linker).
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

attributes #0 = { nounwind "no-builtins" "wasm-export-name"="gemv" "target-features"="+simd128" }
attributes #1 = { nounwind "no-builtins" "wasm-export-name"="sub" "target-features"="+simd128" }
