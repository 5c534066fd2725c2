// Masking of URLs and personal data (PII): e-mail addresses, phone numbers, IPv4/IPv6 addresses and payment-card
// numbers. Each masker replaces a match with a placeholder token ("<EMAIL>", ...), keeping the surrounding
// text. These are pattern matchers, not a PII detector: names, street addresses and national ID numbers are
// not found, and some numbers that look like phone numbers are masked. See docs/data-prep.md.
import { isIPv4, isIPv6 } from 'node:net';

export type PiiKind = 'email' | 'phone' | 'ip' | 'credit_card';
export const PII_KINDS: readonly PiiKind[] = ['email', 'phone', 'ip', 'credit_card'];

export interface Placeholders {
  url: string;
  email: string;
  phone: string;
  ip: string;
  credit_card: string;
}
export const DEFAULT_PLACEHOLDERS: Placeholders = { url: '<URL>', email: '<EMAIL>', phone: '<PHONE>', ip: '<IP>', credit_card: '<CREDIT_CARD>' };

/**
 * URLs: http(s)/ftp scheme URLs and bare "www." hosts, up to the next whitespace, quote or angle bracket;
 * trailing sentence punctuation (.,;:!?) and an unbalanced closing bracket are left outside the match.
 */
export function maskUrls(text: string, placeholder = DEFAULT_PLACEHOLDERS.url): string {
  return text.replace(/\b(?:(?:https?|ftp):\/\/|www\.)[^\s<>"'`]+/gi, (m) => {
    let end = m.length;
    for (;;) {
      const c = m[end - 1];
      if (/[.,;:!?]/.test(c)) end--;
      else if (c === ')' && count(m.slice(0, end), '(') < count(m.slice(0, end), ')')) end--;
      else break;
    }
    return placeholder + m.slice(end);
  });
}

function count(s: string, ch: string): number {
  let n = 0;
  for (const c of s) if (c === ch) n++;
  return n;
}

/** E-mail addresses: local@domain.tld with a dot-atom local part and a 2+ letter top-level domain. */
export function maskEmails(text: string, placeholder = DEFAULT_PLACEHOLDERS.email): string {
  if (!text.includes('@')) return text;
  return text.replace(/(?<![\w.+-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\b/g, placeholder);
}

/** IPv4 (dotted quad, each part 0-255, no leading zeros) and IPv6 (validated by node:net, zone ids allowed). */
export function maskIps(text: string, placeholder = DEFAULT_PLACEHOLDERS.ip): string {
  let s = text;
  if (s.includes(':')) {
    s = s.replace(/(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|(?:\d{1,3}\.){3}\d{1,3})(?:%[\w.]+)?(?![\w:])/g, (m) => {
      const addr = m.replace(/%[\w.]+$/, '');
      return /[0-9A-Fa-f]/.test(addr) && isIPv6(addr) ? placeholder : m;
    });
  }
  if (/\d\.\d/.test(s)) s = s.replace(/(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)/g, (m) => (isIPv4(m) ? placeholder : m));
  return s;
}

/** The Luhn (mod 10) check used by payment-card numbers: ISO/IEC 7812-1 annex B. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** Payment-card-like numbers: 13-19 digits, optionally grouped by single spaces or dashes, passing Luhn. */
export function maskCreditCards(text: string, placeholder = DEFAULT_PLACEHOLDERS.credit_card): string {
  if (!/\d{4}/.test(text) && !/\d[ -]\d/.test(text)) return text;
  return text.replace(/(?<![\d.,-])\d(?:[ -]?\d){12,18}(?![\d]|[.,]\d)/g, (m) => (luhnValid(m.replace(/[ -]/g, '')) ? placeholder : m));
}

/**
 * Phone numbers: an optional +country code, an optional (area code), then 2-4 digit groups separated by a
 * space, dot or dash — 7 to 15 digits in all (E.164 allows 15) — or a '+' followed by 8-15 digits. Ungrouped
 * runs of digits without '+' are not masked (they are more often ids, amounts or years), nor two groups split
 * by a single space without '+' or '(area)', nor dates (2024-01-31, 31.01.2024) or dotted quads (IPs).
 */
export function maskPhones(text: string, placeholder = DEFAULT_PLACEHOLDERS.phone): string {
  if (!/\d/.test(text)) return text;
  const grouped = /(?<![\w+.\-/])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,5}(?![\w]|[.\-/]\d)|(?<![\w+])\+\d{8,15}(?!\w)/g;
  return text.replace(grouped, (m) => {
    const digits = m.replace(/\D/g, '');
    if (digits.length < 7 || digits.length > 15) return m;
    if (/^\d{4}-\d{2}-\d{2}$/.test(m) || /^\d{2}[./-]\d{2}[./-]\d{4}$/.test(m)) return m; // dates
    if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(m)) return m; // dotted quad
    // Two digit groups split by one space ("in 2024 1200") are too weak a signal without '+' or '(area)'.
    const spaceOnly = !/[.-]/.test(m);
    if (spaceOnly && !/^[+(]/.test(m) && m.split(' ').length < 3) return m;
    return placeholder;
  });
}

/**
 * All PII maskers in a fixed order: e-mails first (they contain dots and digits), IPs, then card numbers
 * (validated by Luhn), then phone numbers (which would otherwise also match card numbers).
 */
export function maskPii(text: string, kinds: readonly PiiKind[] = PII_KINDS, ph: Placeholders = DEFAULT_PLACEHOLDERS): string {
  let s = text;
  if (kinds.includes('email')) s = maskEmails(s, ph.email);
  if (kinds.includes('ip')) s = maskIps(s, ph.ip);
  if (kinds.includes('credit_card')) s = maskCreditCards(s, ph.credit_card);
  if (kinds.includes('phone')) s = maskPhones(s, ph.phone);
  return s;
}
