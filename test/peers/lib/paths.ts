/**
 * Where peers live: the install cache (outside the repository, keyed by name and version), the
 * run folder (state file, data folders, logs) and the version manifest (../versions.json).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PEERS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(PEERS_DIR, '..', '..');

/** `${REGISTRY_BRIDGE_PEERS_CACHE:-$HOME/.cache/registry-bridge/peers}` */
export function cacheRoot(): string {
  return process.env.REGISTRY_BRIDGE_PEERS_CACHE || path.join(os.homedir(), '.cache', 'registry-bridge', 'peers');
}

/** `<cacheRoot>/<name>-<version>/` */
export function cacheDir(name: string, version: string): string {
  return path.join(cacheRoot(), `${name}-${version.replace(/[^A-Za-z0-9._+-]/g, '_')}`);
}

/** `${TMPDIR:-/tmp}/registry-bridge-peers` (state.json, one data folder per peer). */
export function runDir(): string {
  return process.env.RB_PEERS_RUN_DIR || path.join(process.env.TMPDIR || '/tmp', 'registry-bridge-peers');
}

export function stateFile(): string {
  return path.join(runDir(), 'state.json');
}

export interface VersionEntry {
  source: string;
  version: string;
  [k: string]: unknown;
}

export async function versionEntry(key: string): Promise<VersionEntry> {
  const all = JSON.parse(await fs.readFile(path.join(PEERS_DIR, 'versions.json'), 'utf8')) as Record<
    string,
    VersionEntry
  >;
  const e = all[key];
  if (!e) throw new Error(`test/peers/versions.json has no entry "${key}"`);
  return e;
}

export async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/** Reads `<dir>/.installed.json` if present (written last by every install). */
export async function readMarker<T>(dir: string): Promise<T | null> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, '.installed.json'), 'utf8')) as T;
  } catch {
    return null;
  }
}

export async function writeMarker(dir: string, data: unknown): Promise<void> {
  await fs.writeFile(path.join(dir, '.installed.json'), JSON.stringify(data, null, 2) + '\n');
}
