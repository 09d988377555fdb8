/**
 * The README must stay true as the product changes (issue 9): every palette command, setting and
 * CLI command is documented, every walkthrough step exists, and every picture and local link it
 * points at is in the repository. These read the real package.json and the real CLI registry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { COMMANDS } from '../../src/cli/main';

const ROOT = path.resolve(__dirname, '../..');
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  contributes: {
    commands: Array<{ command: string; title: string }>;
    configuration: { properties: Record<string, unknown> } | Array<{ properties: Record<string, unknown> }>;
    walkthroughs: Array<{ id: string; title: string; steps: Array<{ id: string; title: string; description: string; media: { markdown?: string; image?: string } }> }>;
  };
  menus?: unknown;
};

test('README documents every contributed command by its title', () => {
  const missing = pkg.contributes.commands.filter((c) => !readme.includes(c.title.replace(' (Model Map)', '')));
  assert.deepEqual(missing.map((c) => `${c.command} "${c.title}"`), []);
});

test('README documents every setting', () => {
  const cfg = pkg.contributes.configuration;
  const props = Array.isArray(cfg) ? Object.assign({}, ...cfg.map((c) => c.properties)) : cfg.properties;
  const keys = Object.keys(props);
  assert.ok(keys.length >= 4, 'the settings list was read');
  assert.deepEqual(keys.filter((k) => !readme.includes(`\`${k}\``)), []);
});

test('README documents every CLI command', () => {
  assert.ok(COMMANDS.length >= 13);
  assert.deepEqual(COMMANDS.map((c) => c.name).filter((n) => !new RegExp('\\| `' + n + '[ `]').test(readme)), []);
});

test('README names the walkthrough, and every walkthrough step has its media and a command link', () => {
  const [w] = pkg.contributes.walkthroughs;
  assert.ok(w, 'a walkthrough is contributed');
  assert.ok(readme.includes(w.title), `README names the walkthrough "${w.title}"`);
  assert.ok(w.steps.length >= 5);
  const known = new Set(pkg.contributes.commands.map((c) => c.command));
  for (const s of w.steps) {
    const media = s.media.markdown ?? s.media.image;
    assert.ok(media && existsSync(path.join(ROOT, media)), `step ${s.id}: media ${media} exists`);
    const links = [...s.description.matchAll(/\(command:(?:toSide:)?([\w.]+)/g)].map((m) => m[1]!);
    assert.ok(links.length >= 1, `step ${s.id} has a command link`);
    for (const l of links) assert.ok(known.has(l) || l.startsWith('workbench.') || l.startsWith('vscode.'), `step ${s.id}: ${l} is a real command`);
  }
});

test('every image and local link in README exists', () => {
  const targets = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/.test(t));
  assert.ok(targets.some((t) => t.endsWith('.png')), 'README has screenshots');
  assert.deepEqual(targets.filter((t) => !existsSync(path.join(ROOT, t))), []);
});
