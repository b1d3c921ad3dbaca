import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lastManager, olderThan } from '../../src/sinks/kube/sink.js';

/**
 * Captured from the harness: a ServiceEntry the bridge applied (kube-apiserver 1.35) whose status
 * istiod (pilot-discovery) then wrote in the same second through the status subresource.
 */
const captured = JSON.parse(
  readFileSync(new URL('../fixtures/kube/serviceentry-with-istiod-status.json', import.meta.url), 'utf8'),
);

describe('lastManager (what the sink watch treats as a foreign edit)', () => {
  it('ignores istiod writing status in the same second as our apply', () => {
    expect(
      captured.metadata.managedFields.map(
        (f: { manager: string; subresource?: string }) => `${f.manager}/${f.subresource ?? ''}`,
      ),
    ).toEqual(['registry-bridge/', 'pilot-discovery/status']);
    expect(lastManager(captured)).toBe('registry-bridge');
  });

  it('names someone who edited the spec after us', () => {
    const edited = structuredClone(captured);
    edited.metadata.managedFields.push({
      manager: 'kubectl-edit',
      operation: 'Update',
      apiVersion: 'networking.istio.io/v1',
      time: '2099-01-01T00:00:00Z',
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:spec': { 'f:ports': {} } },
    });
    expect(lastManager(edited)).toBe('kubectl-edit');
  });

  it('has no manager for an object without managed fields', () => {
    expect(lastManager({ metadata: {} })).toBeUndefined();
  });
});

describe('olderThan (a watch event never overwrites what a newer write answered)', () => {
  it('orders etcd resourceVersions as integers, not as strings', () => {
    expect(olderThan('999', '1000')).toBe(true);
    expect(olderThan('1000', '999')).toBe(false);
    expect(olderThan('1234', '1235')).toBe(true);
    expect(olderThan('1235', '1235')).toBe(false);
  });
  it('calls nothing older that it cannot compare (the event wins, as without the check)', () => {
    expect(olderThan(undefined, '5')).toBe(false);
    expect(olderThan('5', undefined)).toBe(false);
    expect(olderThan('abc', '5')).toBe(false);
    expect(olderThan('5', 'v6')).toBe(false);
  });
});
