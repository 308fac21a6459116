import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { Worker } from '@temporalio/worker';
import { testServers } from '../support/servers';

const HISTORIES_DIR = path.join(__dirname, '..', 'fixtures', 'histories');
const histories = readdirSync(HISTORIES_DIR).filter((name) => name.endsWith('.json'));

/**
 * A history file (`temporal workflow show -w ID -o json`) as the History the worker replays.
 * The SDK's own `historyFromJSON` fails in this dependency tree ("type must be a Type"):
 * @temporalio/common and @temporalio/proto each get their own copy of protobufjs 8, and the JSON
 * reader of one does not recognise the other's message types. This uses @temporalio/proto's copy.
 */
function historyFromFile(file: string): unknown {
  const fromProtoPackage = createRequire(require.resolve('@temporalio/proto/package.json'));
  const { fromJson } = fromProtoPackage('protobufjs/ext/protojson') as {
    fromJson: (type: unknown, json: unknown, options: { ignoreUnknownFields: boolean }) => unknown;
  };
  const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType(
    'temporal.api.history.v1.History',
  );
  return fromJson(historyType, JSON.parse(readFileSync(file, 'utf8')), { ignoreUnknownFields: true });
}

/**
 * Workflows that were running when a new worker version is deployed are replayed by it: each
 * history here, recorded from a real run, must replay against the current workflow code without
 * a nondeterminism error. A change to the commands the workflow issues goes behind `patched()`
 * (see docs/operating.md), or this test fails.
 */
describe('workflow histories replay against the current code', () => {
  it('has recorded histories to replay', () => {
    expect(histories.length).toBeGreaterThanOrEqual(5);
  });

  it.each(histories)('%s', async (name) => {
    const history = historyFromFile(path.join(HISTORIES_DIR, name));
    await expect(
      Worker.runReplayHistory(
        { workflowBundle: { codePath: testServers().workflowBundlePath }, replayName: `replay-${name}` },
        history,
      ),
    ).resolves.toBeUndefined();
  });
});
