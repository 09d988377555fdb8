/** Paths of the shared fixtures the evaluation tests use. */
import * as path from 'node:path';
import { readFileSync } from 'node:fs';

export const SHARED = path.resolve(__dirname, '../../../../shared');
export const F = path.join(SHARED, 'fixtures');
export const PICO = path.join(F, 'pico');
export const STORIES = path.join(F, 'stories260k');
export const STORIES_GGUF = path.join(F, 'real/stories260K.gguf');
export const LLAMA2_TINY = path.join(F, 'real/llama-2-tiny-random.gguf');
export const SHAKESPEARE = path.join(SHARED, 'text/tinyshakespeare.txt');

export function storiesMeta(): { greedy_sample: string; config: Record<string, number> } {
  return JSON.parse(readFileSync(path.join(STORIES, 'meta.json'), 'utf8'));
}

export function picoMeta(): { final_val_loss: number; vocab: string[]; config: Record<string, number> } {
  return JSON.parse(readFileSync(path.join(PICO, 'meta.json'), 'utf8'));
}

/** PicoGPT's validation split: the last 10% of the corpus (characters; the file is ASCII). */
export function picoValidationText(): string {
  const text = readFileSync(SHAKESPEARE, 'utf8');
  return text.slice(Math.floor(0.9 * text.length));
}
