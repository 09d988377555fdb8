export { WorkerPool, defaultWorkerScript, type WorkerPoolOptions, type PoolStats } from './pool';
export { scanSpectra, type SpectrumScanOptions } from './scan';
export { ResultCache, cacheKey, defaultCacheDir, fileIdentity, type TensorIdentity, type FileIdentity } from './cache';
export type * from './types';
