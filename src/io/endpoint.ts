// OpenAI-compatible chat endpoints (llama.cpp server, ollama, vLLM) are given by users in several forms; every
// client of one (data augmentation, CAI critics and judges, win-rate judges) resolves them the same way here.
import { AlignkitError } from '../tensor/errors.ts';

/**
 * The chat-completions URL of a base URL: ".../chat/completions" as is, ".../v1" + "/chat/completions", else
 * + "/v1/chat/completions". `flag` names the option in error messages (e.g. '--endpoint').
 */
export function chatCompletionsUrl(url: string, flag = 'endpoint'): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AlignkitError(`${flag}: not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new AlignkitError(`${flag}: expected an http:// or https:// URL, got ${JSON.stringify(url)}`);
  const p = u.pathname.replace(/\/+$/, '');
  u.pathname = p.endsWith('/chat/completions') ? p : p.endsWith('/v1') ? `${p}/chat/completions` : `${p}/v1/chat/completions`;
  return u.toString();
}
