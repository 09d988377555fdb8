export * from './types';
export * from './errors';
export { open, detectFormat } from './open';
export { summarize } from './base';
export { groupOf, groupOrder } from './grouping';
