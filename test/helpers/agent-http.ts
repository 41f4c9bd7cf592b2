// An in-process agent behind its HTTP app on 127.0.0.1, for tests that talk to the endpoints.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, type AgentOptions } from '../../agent/agent';
import { createApp, type HttpOptions } from '../../agent/http';

export interface AgentHttp {
  agent: Agent;
  server: http.Server;
  /** http://127.0.0.1:<port> */
  base: string;
  /** Stops the agent, then closes the server and its connections. */
  stop(): Promise<void>;
}

/** Loads the config (which must be valid) and serves the app; `app` adds HTTP options. */
export async function startAgentHttp(
  opts: AgentOptions,
  app: Omit<HttpOptions, 'agent' | 'logger' | 'reload'> = {},
): Promise<AgentHttp> {
  const agent = new Agent(opts);
  expect(agent.reload().ok).toBe(true);
  const server = http.createServer(createApp({ agent, logger: opts.logger, reload: () => agent.reload(), ...app }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    agent,
    server,
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      await agent.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
