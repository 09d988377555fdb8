import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ModelStore, OpenedModel } from './modelStore';
import {
  byteRange, compactCount, countMatches, groupTensors, grouped, matchesFilter, tensorDescription,
  type GroupView, type TensorRow,
} from './modelTreeModel';

/** Nodes of the Models tree. Ids are stable strings so `reveal` and expansion state survive refreshes. */
export type ModelTreeNode =
  | { kind: 'model'; id: string; model: OpenedModel }
  | { kind: 'group'; id: string; model: OpenedModel; group: GroupView }
  | { kind: 'tensor'; id: string; model: OpenedModel; group: string; tensor: TensorRow };

/** Context values, for `when` clauses of view/item/context menus: `viewItem == tensorScalpel.tensor`. */
export const CONTEXT = {
  model: 'tensorScalpel.model',
  group: 'tensorScalpel.group',
  tensor: 'tensorScalpel.tensor',
} as const;

export const VIEW_ID = 'tensorScalpel.models';
/** Command run when a tensor row is clicked: open the model's overview at that tensor. */
export const SHOW_TENSOR_COMMAND = 'tensorScalpel.showTensor';

function modelId(m: OpenedModel): string {
  return m.uri.toString();
}
function groupId(m: OpenedModel, label: string): string {
  return `${modelId(m)}#group:${label}`;
}
function tensorId(m: OpenedModel, name: string): string {
  return `${modelId(m)}#tensor:${name}`;
}

/**
 * The Models tree: each opened checkpoint -> its groups (embedding, block N, head, other) -> tensors.
 * A name filter hides non-matching tensors (and groups left empty); models always stay listed so the
 * user sees where nothing matched.
 */
export class ModelTreeProvider implements vscode.TreeDataProvider<ModelTreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ModelTreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private filterText = '';
  private view: vscode.TreeView<ModelTreeNode> | undefined;
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly store: ModelStore) {
    this.subs.push(store.onDidChange(() => this.refresh()));
  }

  /** Attaches the TreeView so the provider can update its message, description and badge. */
  attach(view: vscode.TreeView<ModelTreeNode>): void {
    this.view = view;
    this.updateViewChrome();
  }

  get filter(): string {
    return this.filterText;
  }

  setFilter(text: string): void {
    this.filterText = text.trim();
    void vscode.commands.executeCommand('setContext', 'tensorScalpel.filterActive', this.filterText !== '');
    this.refresh();
  }

  refresh(): void {
    void vscode.commands.executeCommand('setContext', 'tensorScalpel.hasModels', this.store.all().length > 0);
    this.updateViewChrome();
    this.changed.fire(undefined);
  }

  private updateViewChrome(): void {
    if (!this.view) return;
    if (this.filterText) {
      const { shown, total } = countMatches(this.store.all().map((m) => m.summary), this.filterText);
      this.view.description = `filter: ${this.filterText}`;
      this.view.message = `Filter "${this.filterText}": ${grouped(shown)} of ${grouped(total)} tensors match.`;
    } else {
      this.view.description = undefined;
      this.view.message = undefined;
    }
  }

  getChildren(node?: ModelTreeNode): ModelTreeNode[] {
    if (!node) return this.store.all().map((model) => ({ kind: 'model', id: modelId(model), model }));
    if (node.kind === 'model') {
      return groupTensors(node.model.summary.tensors, this.filterText)
        .map((group) => ({ kind: 'group', id: groupId(node.model, group.label), model: node.model, group }));
    }
    if (node.kind === 'group') {
      return node.group.tensors.map((tensor) => ({
        kind: 'tensor', id: tensorId(node.model, tensor.name), model: node.model, group: node.group.label, tensor,
      }));
    }
    return [];
  }

  getParent(node: ModelTreeNode): ModelTreeNode | undefined {
    if (node.kind === 'model') return undefined;
    const modelNode: ModelTreeNode = { kind: 'model', id: modelId(node.model), model: node.model };
    if (node.kind === 'group') return modelNode;
    const group = groupTensors(node.model.summary.tensors, this.filterText).find((g) => g.label === node.group);
    return group ? { kind: 'group', id: groupId(node.model, group.label), model: node.model, group } : modelNode;
  }

  getTreeItem(node: ModelTreeNode): vscode.TreeItem {
    switch (node.kind) {
      case 'model': {
        const s = node.model.summary;
        const name = path.basename(node.model.uri.fsPath);
        const item = new vscode.TreeItem(name, vscode.TreeItemCollapsibleState.Collapsed);
        item.id = node.id;
        item.contextValue = CONTEXT.model;
        item.resourceUri = node.model.uri;
        item.iconPath = new vscode.ThemeIcon('database');
        const shown = this.filterText ? s.tensors.filter((t) => matchesFilter(t.name, this.filterText)).length : s.tensors.length;
        item.description = this.filterText
          ? `${shown} of ${s.tensors.length} tensors match`
          : `${compactCount(s.totalParams)} params · ${s.formatDetail}`;
        item.tooltip = new vscode.MarkdownString(
          `**${escapeMd(name)}**  \n${escapeMd(s.formatDetail)}  \n${grouped(s.totalParams)} parameters in ${grouped(s.tensors.length)} tensors  \n` +
          `${grouped(s.sizeOnDisk)} bytes on disk in ${s.files.length} file${s.files.length === 1 ? '' : 's'}  \n${escapeMd(node.model.uri.fsPath)}`,
        );
        item.command = { command: 'vscode.openWith', title: 'Open Overview', arguments: [node.model.uri, 'tensorScalpel.checkpoint'] };
        return item;
      }
      case 'group': {
        const g = node.group;
        const item = new vscode.TreeItem(g.label, this.filterText ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed);
        item.id = node.id;
        item.contextValue = CONTEXT.group;
        item.iconPath = new vscode.ThemeIcon(g.label === 'embedding' ? 'symbol-key' : g.label === 'head' ? 'symbol-event' : g.label === 'other' ? 'symbol-misc' : 'layers');
        item.description = `${g.tensors.length} tensor${g.tensors.length === 1 ? '' : 's'} · ${grouped(g.params)} params`;
        return item;
      }
      case 'tensor': {
        const t = node.tensor;
        const item = new vscode.TreeItem(t.name, vscode.TreeItemCollapsibleState.None);
        item.id = node.id;
        item.contextValue = CONTEXT.tensor;
        item.iconPath = new vscode.ThemeIcon(t.shape.length === 2 ? 'symbol-array' : 'symbol-number');
        item.description = tensorDescription(t);
        item.tooltip = new vscode.MarkdownString(
          `**${escapeMd(t.name)}**  \nshape [${t.shape.join(', ')}] · ${escapeMd(t.dtype)} · ${grouped(t.params)} parameters  \n` +
          `${byteRange(t.byteOffset, t.byteLength)}  \nfile ${escapeMd(t.file)}`,
        );
        item.command = { command: SHOW_TENSOR_COMMAND, title: 'Show in Overview', arguments: [node.model.uri, t.name] };
        return item;
      }
    }
  }

  /** Node of a model, for `reveal`. */
  modelNode(uri: vscode.Uri): ModelTreeNode | undefined {
    const model = this.store.get(uri);
    return model ? { kind: 'model', id: modelId(model), model } : undefined;
  }

  /** Node of a tensor (undefined when the filter hides it). */
  tensorNode(uri: vscode.Uri, name: string): ModelTreeNode | undefined {
    const model = this.store.get(uri);
    if (!model) return undefined;
    const tensor = model.summary.tensors.find((t) => t.name === name);
    if (!tensor || !matchesFilter(tensor.name, this.filterText)) return undefined;
    return { kind: 'tensor', id: tensorId(model, name), model, group: tensor.group, tensor };
  }

  /** Selects the model in the tree (only when the view is visible: reveal would otherwise open it). */
  async revealModel(uri: vscode.Uri): Promise<void> {
    const node = this.modelNode(uri);
    if (!node || !this.view?.visible) return;
    await this.view.reveal(node, { select: true, focus: false, expand: false });
  }

  /** Selects a tensor (its group expanded); falls back to the model when the filter hides it. */
  async revealTensor(uri: vscode.Uri, name: string): Promise<void> {
    if (!this.view) return;
    const node = this.tensorNode(uri, name) ?? this.modelNode(uri);
    if (node) await this.view.reveal(node, { select: true, focus: false, expand: true });
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.changed.dispose();
  }
}

/** Escapes Markdown punctuation in names (tensor names contain `_` and `.`). */
function escapeMd(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
