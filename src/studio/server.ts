// Starting the studio: the database, the app, and a Node HTTP server (@hono/node-server) on 127.0.0.1 by default.
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createStudioApp, type StudioAppOptions } from './app.ts';
import { openStudioDb } from './db.ts';
import { StudioStore } from './store.ts';
import { AlignkitError } from '../tensor/errors.ts';

export interface StudioServerOptions extends StudioAppOptions {
  dbFile: string;
  /** 0 picks a free port. */
  port: number;
  host?: string;
  seed?: number;
}

export interface RunningStudio {
  url: string;
  port: number;
  host: string;
  store: StudioStore;
  close(): Promise<void>;
}

export const LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', 'localhost', '::1'];

export async function startStudio(o: StudioServerOptions): Promise<RunningStudio> {
  const db = openStudioDb(o.dbFile);
  const store = new StudioStore(db, { seed: o.seed });
  const { app } = createStudioApp(store, o);
  const host = o.host ?? '127.0.0.1';
  let server: ReturnType<typeof serve>;
  const info = await new Promise<AddressInfo>((resolve, reject) => {
    server = serve({ fetch: app.fetch, port: o.port, hostname: host }, resolve);
    server.once('error', (e: NodeJS.ErrnoException) => {
      db.close();
      const why = e.code === 'EADDRINUSE' ? 'the port is in use (pick another with --port, or 0 for any free port)' : e.message;
      reject(new AlignkitError(`cannot listen on ${host}:${o.port}: ${why}`));
    });
  });
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${info.port}`,
    port: info.port,
    host,
    store,
    close: () =>
      new Promise<void>((resolve) => {
        // closeAllConnections: keep-alive sockets would otherwise hold close() open.
        const s = server as unknown as { close(cb: () => void): void; closeAllConnections?: () => void };
        s.close(() => {
          db.close();
          resolve();
        });
        s.closeAllConnections?.();
      }),
  };
}
