import http from 'node:http';
import type net from 'node:net';

/**
 * A loopback HTTP front for a test registry: forwards every request (Host kept, so the registry's
 * upload Locations point back at the front) unless `intercept` answers it first. Tests use it to
 * inject faults (503 bursts, resets, stalls) and to demand Bearer tokens.
 */
export interface Front {
  host: string;
  /** Requests seen, as `METHOD path`. */
  seen: string[];
  stop(): Promise<void>;
}

export type Forward = (opts?: { abortAfterBodyBytes?: number; addHeaders?: Record<string, string> }) => void;

export type Intercept = (req: http.IncomingMessage, res: http.ServerResponse, forward: Forward) => void;

export async function startFront(target: string, intercept?: Intercept): Promise<Front> {
  const sockets = new Set<net.Socket>();
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const forward: Forward = (opts = {}) => {
      const [thost, tport] = target.split(':');
      const up = http.request(
        { host: thost, port: Number(tport), method: req.method, path: req.url, headers: req.headers },
        (ur) => {
          res.writeHead(ur.statusCode ?? 502, { ...ur.headers, ...opts.addHeaders });
          if (opts.abortAfterBodyBytes === undefined) {
            ur.pipe(res);
            return;
          }
          let sent = 0;
          ur.on('data', (c: Buffer) => {
            if (sent >= opts.abortAfterBodyBytes!) return;
            const part = c.subarray(0, opts.abortAfterBodyBytes! - sent);
            sent += part.length;
            res.write(part);
            if (sent >= opts.abortAfterBodyBytes!) {
              // Connection reset in the middle of the body, once the client has read what was sent
              // (a reset also discards data still unread in the receiver's socket buffer).
              ur.destroy();
              setTimeout(() => res.socket?.resetAndDestroy(), 200);
            }
          });
        },
      );
      up.on('error', () => res.socket?.destroy());
      req.pipe(up);
    };
    if (intercept) intercept(req, res, forward);
    else forward();
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    seen,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
