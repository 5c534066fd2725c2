// Test doubles for the CAI loops: a deterministic scripted chat model that records every request, a scripted
// judge, and a local OpenAI-compatible chat server (node:http on 127.0.0.1; never the network).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChatModel, ChatRequest, ChatSampling, Choice } from '../../src/cai/chat.ts';
import type { ChatMessage } from '../../src/tokenizer/index.ts';

export class ScriptedChat implements ChatModel {
  readonly chatFormat = true;
  /** Every chat() call: its requests. */
  readonly calls: ChatRequest[][] = [];
  readonly chooseCalls: ChatMessage[][][] = [];
  disposed = false;
  constructor(
    readonly name: string,
    /** The reply to one request (k: the running request counter of this model). */
    private readonly reply: (r: ChatRequest, k: number) => string,
    private readonly judge: (conversation: ChatMessage[], options: readonly [string, string]) => Choice = () => ({ pFirst: 0.5, source: 'logprobs' }),
  ) {}
  private k = 0;
  async chat(requests: readonly ChatRequest[], _s: ChatSampling): Promise<string[]> {
    this.calls.push(requests.map((r) => ({ messages: r.messages.map((m) => ({ ...m })), seed: r.seed })));
    return requests.map((r) => this.reply(r, this.k++));
  }
  async choose(conversations: readonly ChatMessage[][], options: readonly [string, string]): Promise<Choice[]> {
    this.chooseCalls.push(conversations.map((c) => c.map((m) => ({ ...m }))));
    return conversations.map((c) => this.judge(c, options));
  }
  dispose(): void {
    this.disposed = true;
  }
}

/** The text of a request's last user message. */
export const lastUser = (r: { messages: ChatMessage[] }): string => String(r.messages[r.messages.length - 1].content);

export interface ChatServer {
  url: string;
  /** Bodies of every request received. */
  bodies: Record<string, unknown>[];
  close(): Promise<void>;
}

/** An OpenAI-compatible /v1/chat/completions server answering with `answer(body)` (a string or a full JSON body). */
export async function startChatServer(answer: (body: Record<string, unknown>) => string | Record<string, unknown>): Promise<ChatServer> {
  const bodies: Record<string, unknown>[] = [];
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString('utf8')));
    req.on('end', () => {
      if (req.url !== '/v1/chat/completions' || req.method !== 'POST') {
        res.writeHead(404).end('not found');
        return;
      }
      const body = JSON.parse(data) as Record<string, unknown>;
      bodies.push(body);
      const a = answer(body);
      const out = typeof a === 'string' ? { id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: a }, finish_reason: 'stop' }] } : a;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, bodies, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A URL on which nothing listens (a port just released). */
export async function deadUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}
