import type { Argv, CommandModule } from 'yargs';
import * as z from 'zod';
import { askApprovalSocket, type SocketRequest } from '../../approval/socket.js';
import { MintfsError, type MintfsErrorCode, ERROR_CODES } from '../../errors.js';
import { parseDuration } from '../../util/duration.js';
import { defineCommand } from '../define-command.js';
import { formatTable, printJson, printResult } from '../io.js';

const SocketArg = z.string().min(1, 'give the gateway approval.socket path');
const ApprovalId = z.string().regex(/^apr_[A-Za-z0-9_-]{8,40}$/, 'not an approval id (apr_...)');
const socketOption = {
  socket: {
    type: 'string',
    demandOption: true,
    describe: "The gateway's approval.socket (root only)",
  },
} as const;

/** Sends one request; a refusal from the gateway is this command's error, with its code. */
async function ask(socket: string, request: SocketRequest): Promise<Record<string, unknown>> {
  const answer = await askApprovalSocket(socket, request);
  if (answer.ok === true) return answer;
  const code =
    typeof answer.error === 'string' && answer.error in ERROR_CODES
      ? answer.error
      : 'ERR_APPROVAL_UNAVAILABLE';
  throw new MintfsError(
    code as MintfsErrorCode,
    typeof answer.message === 'string' ? answer.message : 'the gateway refused the request',
  );
}

interface Pending {
  id: string;
  agent: string;
  method: string;
  host: string;
  path: string;
  query: string;
  bodyBytes: number;
  bodyType?: string;
  bodyPreview?: string;
  timesOutAt: string;
}

/**
 * The terminal listing: a table, then each body's preview on lines of its
 * own, so an approver reads what a POST carries before approving it (the
 * table alone shows only its size). Every agent-chosen field is shown with
 * control characters escaped: none may move the cursor or repaint a line.
 */
export function formatPending(pending: readonly Pending[]): string {
  const table = formatTable(
    ['ID', 'AGENT', 'REQUEST', 'BODY', 'TIMES OUT'],
    pending.map((p) => [
      p.id,
      onScreen(p.agent),
      onScreen(`${p.method} ${p.host}${p.path}${p.query}`),
      `${p.bodyBytes} B`,
      p.timesOutAt,
    ]),
  );
  const bodies = pending
    .filter((p) => p.bodyBytes > 0)
    .map(
      (p) =>
        `\n${p.id} body (${p.bodyBytes} B${typeOnScreen(p.bodyType)}):\n  ${onScreen(p.bodyPreview ?? '').replace(/\n/g, '\n  ')}`,
    );
  return [table, ...bodies].join('\n');
}

/** ", Content-Type X, Content-Encoding Y" for the body line; what is absent is said so. */
function typeOnScreen(bodyType: string | undefined): string {
  const [type = '', encoding = ''] = (bodyType ?? '').split('\n');
  return `, Content-Type ${type === '' ? 'none' : onScreen(type)}${encoding === '' ? '' : `, Content-Encoding ${onScreen(encoding)}`}`;
}

/** Text as a terminal shows it literally: controls (but newline) and bidi overrides escaped. */
function onScreen(text: string): string {
  return text.replace(
    /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/gu,
    (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`,
  );
}

const list = defineCommand({
  command: 'list',
  describe: 'Requests waiting for an approver: one a line (JSON when piped)',
  builder: (yargs) =>
    yargs
      .options(socketOption)
      .option('json', { type: 'boolean', describe: 'JSON even at a terminal' })
      .example('$0 approvals list --socket /run/mintfs/approvals.sock', ''),
  args: z.object({ socket: SocketArg, json: z.boolean().optional() }),
  run: async (args) => {
    const answer = await ask(args.socket, { op: 'list' });
    const pending = (answer.pending ?? []) as Pending[];
    if (args.json === true || !process.stdout.isTTY) return printJson({ pending });
    if (pending.length === 0) return printResult('no request is waiting');
    printResult(formatPending(pending));
  },
});

const show = defineCommand({
  command: 'show <id>',
  describe:
    'One waiting request with its whole body (tokens masked, controls escaped, as the preview): JSON when piped',
  builder: (yargs) =>
    yargs
      .positional('id', { type: 'string', describe: 'Approval id, as `approvals list` shows it' })
      .options(socketOption)
      .option('json', { type: 'boolean', describe: 'JSON even at a terminal' })
      .example('$0 approvals show apr_3f9a0c1e5b7d --socket /run/mintfs/approvals.sock', ''),
  args: z.object({ id: ApprovalId, socket: SocketArg, json: z.boolean().optional() }),
  run: async (args) => {
    const answer = await ask(args.socket, { op: 'show', id: args.id });
    const shown = answer.pending as Pending & { body: string; tokenId: string; service: string };
    if (args.json === true || !process.stdout.isTTY) return printJson({ pending: shown });
    printResult(
      [
        `${shown.id}: ${onScreen(`${shown.method} ${shown.host}${shown.path}${shown.query}`)}`,
        `agent ${onScreen(shown.agent)}, service ${onScreen(shown.service)}, token ${onScreen(shown.tokenId)}`,
        `times out ${shown.timesOutAt}`,
        `body (${shown.bodyBytes} B${typeOnScreen(shown.bodyType)}):`,
        `  ${onScreen(shown.body).replace(/\n/g, '\n  ')}`,
      ].join('\n'),
    );
  },
});

const approve = defineCommand({
  command: 'approve <id>',
  describe: 'Release a waiting request (and, with --uses, identical ones after it)',
  builder: (yargs) =>
    yargs
      .positional('id', { type: 'string', describe: 'Approval id, as `approvals list` shows it' })
      .options(socketOption)
      .option('uses', {
        type: 'number',
        describe: 'Requests the approval releases, this one included (default 1)',
      })
      .option('ttl', {
        type: 'string',
        describe: 'How long it lasts: 60s, 10m (default: the gateway approval.decisionTtl)',
      })
      .example('$0 approvals approve apr_3f9a0c1e5b7d --socket /run/mintfs/approvals.sock', ''),
  args: z.object({
    id: ApprovalId,
    socket: SocketArg,
    uses: z.number().int().min(1).max(100).optional(),
    ttl: z
      .string()
      .transform((text, ctx) => {
        const ms = parseDuration(text);
        if (ms === undefined || ms < 1000 || ms > 86_400_000) {
          ctx.addIssue({ code: 'custom', message: 'a duration from 1s to 24h, such as 10m' });
          return z.NEVER;
        }
        return ms;
      })
      .optional(),
  }),
  run: async (args) => {
    printJson(
      await ask(args.socket, {
        op: 'approve',
        id: args.id,
        ...(args.uses === undefined ? {} : { uses: args.uses }),
        ...(args.ttl === undefined ? {} : { ttlMs: args.ttl }),
      }),
    );
  },
});

const deny = defineCommand({
  command: 'deny <id>',
  describe: 'Refuse a waiting request; the agent sees 403 ERR_APPROVAL_DENIED with the reason',
  builder: (yargs) =>
    yargs
      .positional('id', { type: 'string', describe: 'Approval id, as `approvals list` shows it' })
      .options(socketOption)
      .option('reason', {
        type: 'string',
        demandOption: true,
        describe: 'Why (the agent reads it)',
      })
      .example(
        '$0 approvals deny apr_3f9a0c1e5b7d --reason "not on a Friday" --socket /run/mintfs/approvals.sock',
        '',
      ),
  args: z.object({ id: ApprovalId, socket: SocketArg, reason: z.string().min(1).max(500) }),
  run: async (args) => {
    printJson(await ask(args.socket, { op: 'deny', id: args.id, reason: args.reason }));
  },
});

export const approvalsCommand: CommandModule = {
  command: 'approvals <command>',
  describe: 'Decide requests a gateway holds for an approver (approval caveats)',
  builder: (yargs: Argv) =>
    yargs.command(list).command(show).command(approve).command(deny).demandCommand(1),
  handler: () => undefined,
};

const ApproverName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'a name of 1-64 of A-Z a-z 0-9 . _ @ -');

const add = defineCommand({
  command: 'add <name>',
  describe:
    'Print a one-time enrolment link (15 minutes) for the approvers page; whoever opens it decides as NAME',
  builder: (yargs) =>
    yargs
      .positional('name', { type: 'string', describe: 'Who will approve (named in audit lines)' })
      .options(socketOption)
      .example('$0 approvers add alice --socket /run/mintfs/approvals.sock', ''),
  args: z.object({ name: ApproverName, socket: SocketArg }),
  run: async (args) => {
    // The link is this command's purpose: it goes to stdout, to hand to the approver.
    printJson(await ask(args.socket, { op: 'enrol', approver: args.name }));
  },
});

const remove = defineCommand({
  command: 'remove <name>',
  describe: "End an approver's sessions and unused links on the page",
  builder: (yargs) =>
    yargs.positional('name', { type: 'string', describe: 'The approver' }).options(socketOption),
  args: z.object({ name: ApproverName, socket: SocketArg }),
  run: async (args) => {
    printJson(await ask(args.socket, { op: 'remove-approver', approver: args.name }));
  },
});

export const approversCommand: CommandModule = {
  command: 'approvers <command>',
  describe: "Enrol or remove the people who decide on the gateway's approvers page",
  builder: (yargs: Argv) => yargs.command(add).command(remove).demandCommand(1),
  handler: () => undefined,
};
