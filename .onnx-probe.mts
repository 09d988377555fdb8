import { openOnnx } from './src/core/checkpoint/onnx';
for (const f of ['../shared/fixtures/pico/pico.onnx','../shared/fixtures/pico/pico_ext.onnx','../shared/fixtures/stories260k/stories260K.onnx','../shared/fixtures/stories260k/stories260K_ext.onnx']) {
  const t0 = performance.now();
  const c = await openOnnx(f);
  const t1 = performance.now();
  console.log(f, c.tensors.length, c.formatDetail, c.files, c.sizeOnDisk, (t1-t0).toFixed(1)+'ms');
  const groups: Record<string, number> = {};
  for (const t of c.tensors) groups[t.group.label] = (groups[t.group.label] ?? 0) + 1;
  console.log(groups);
  console.log(c.tensors.filter(t => t.shape.length >= 2).map(t => `${t.name} ${t.dtype} [${t.shape}] ${t.group.label} @${t.byteOffset}+${t.byteLength}`).join('\n'));
  const { opTypes, ...m } = c.metadata as any; console.log(JSON.stringify(m).slice(0, 600));
  let s = 0; for (const t of c.tensors) { const v = await t.read(); s += v.length; }
  console.log('read all', s, (performance.now()-t1).toFixed(1)+'ms');
  await c.close();
}
