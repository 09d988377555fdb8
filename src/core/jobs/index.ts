export { WorkerPool, defaultWorkerScript, type WorkerPoolOptions, type PoolStats, type RunOptions } from './pool';
export { listTempOutputs, removeTempOutputs } from './outputCleanup';
export { scanSpectra, type SpectrumScanOptions } from './scan';
export { ResultCache, cacheKey, defaultCacheDir, fileIdentity, type TensorIdentity, type FileIdentity } from './cache';
export type * from './types';
