// What to check next when a rung fails, in the operator's terms, for failures whose prober
// gave no advice of its own (probers' advice is more specific and always wins).
import { PROBERS } from './index';
import type { ProbeFailure } from './types';

const GENERIC: Partial<Record<ProbeFailure['reason'], string>> = {
  refused:
    'Nothing accepts connections on this port: is the service running and listening on this address (not only on 127.0.0.1), and is a firewall rejecting the connection?',
  dns_error:
    'The name does not resolve: check the spelling, the DNS records (A/AAAA for the preferred IP version) and the resolver the agent uses.',
  timeout:
    'No answer before the deadline: a firewall dropping packets or a routing problem between the agent and the host is the usual cause; try `ping` (the icmp prober) and check the firewall rules on the path.',
  no_greeting:
    'The TCP connection was accepted but the service never greeted: the network is fine (the handshake completed); the service is hung or overloaded, or another service that waits for its client holds the port. Check the service and its logs, and what listens on this port.',
  no_response:
    'The TCP connection was accepted but the first request got no answer: the network is fine; the service is hung, or something other than the expected server holds the port (a proxy, a TLS-only listener). Check the service, its logs and what listens on this port.',
  stalled:
    "The service answered correctly, then stopped answering mid-dialogue: it is hung or overloaded (worker pool exhausted, blocked on a backend), not the network. Check the service's load and logs.",
  tls_expected:
    'The port answered with a TLS handshake: it expects TLS from the first byte (implicit TLS). Enable TLS in the module, or point it at the clear-text port.',
  unreachable: "The network has no route to the host: check routing, VPNs and the host's address.",
  reset:
    'The connection was reset: a firewall or load balancer may be rejecting the agent, or the service is crashing on connect; check the service logs.',
  tls_error:
    'The TLS handshake failed: check the certificate (expiry, name, issuer trusted by the agent: tls_config.ca_file), the TLS versions both sides allow, and that the port really speaks TLS.',
  tls_required: 'The server demands encryption: enable TLS in the module.',
  auth_failed:
    'The server refused the credentials: check the user name, the password file or variable, and that the account is enabled.',
  banner_unexpected: 'Another service answers on this port: check the port number and what listens there.',
  protocol_error:
    'The peer answered something the protocol does not allow: check what really listens on this port and its logs.',
  icmp_unavailable:
    'The agent cannot send ping here: install iputils-ping or give the agent NET_RAW (or a matching net.ipv4.ping_group_range).',
  packet_loss:
    'Part of the echo requests were lost: check links, interface errors and overloaded firewalls on the path.',
  aborted: 'The probe was interrupted because the agent is shutting down.',
};

/**
 * Advice for a failure: the failure's own when it has one, else its prober's for the rung and
 * reason (PROBERS' advice), else a default for the rung.
 */
export function adviceFor(prober: string, failure: ProbeFailure): string | undefined {
  if (failure.advice) return failure.advice;
  const generic = GENERIC[failure.reason];
  const def = PROBERS[prober];
  return def?.advice ? def.advice(failure, generic) : generic;
}
