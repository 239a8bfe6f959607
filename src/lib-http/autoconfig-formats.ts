/**
 * autoconfig-formats - the three documents mail clients set themselves up from, rendered from
 * global/client-settings.ts:
 *
 *   mozillaConfig  Thunderbird's autoconfig file, "clientConfig version 1.1"
 *                  (wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat):
 *                  emailProvider/domain, incomingServer type=imap|pop3, outgoingServer type=smtp,
 *                  each with hostname, port, socketType SSL|STARTTLS, authentication
 *                  password-cleartext, username %EMAILADDRESS%.
 *   autodiscoverPox  Microsoft's Autodiscover "POX" answer (MS-OXDSCLI §2.2.4, the Outlook
 *                  response schema 2006a): Account/AccountType email, Action settings, one
 *                  Protocol per type (IMAP, POP3, SMTP) with Server, Port, LoginName, SSL on/off
 *                  and Encryption SSL|TLS (TLS = STARTTLS).
 *   appleProfile   An Apple configuration profile (.mobileconfig, a property list, Apple's
 *                  "Configuration Profile Reference": Mail payload com.apple.mail.managed).
 *                  Unsigned: iOS and macOS show it as "Not Verified" before installing it.
 *
 * Every value that came from a request (the address) is XML-escaped; the address is checked by
 * parseEmailAddress before anything is rendered.
 */
import { createHash } from 'node:crypto';
import type { ClientEndpoint, ClientSettings } from '../global/client-settings.ts';

export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' }[c]!));
}

/**
 * An address a client may send (RFC 5321 §4.1.2 dot-atom local part, at most 64 octets; an LDH
 * domain name), lowercased domain; undefined when it is not one.
 */
export function parseEmailAddress(s: string): { address: string; local: string; domain: string } | undefined {
  if (s.length > 254) return undefined;
  const m = /^([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)@([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+)$/.exec(s);
  if (!m || m[1]!.length > 64) return undefined;
  const domain = m[2]!.toLowerCase();
  return { address: `${m[1]}@${domain}`, local: m[1]!, domain };
}

export function mozillaConfig(domain: string, s: ClientSettings): string {
  const d = xmlEscape(domain);
  const server = (tag: 'incomingServer' | 'outgoingServer', e: ClientEndpoint) => [
    `    <${tag} type="${e.protocol}">`,
    `      <hostname>${xmlEscape(e.host)}</hostname>`,
    `      <port>${e.port}</port>`,
    `      <socketType>${e.tls === 'implicit' ? 'SSL' : 'STARTTLS'}</socketType>`,
    '      <authentication>password-cleartext</authentication>',
    '      <username>%EMAILADDRESS%</username>',
    `    </${tag}>`,
  ];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<clientConfig version="1.1">',
    `  <emailProvider id="${d}">`,
    `    <domain>${d}</domain>`,
    `    <displayName>${d} mail</displayName>`,
    `    <displayShortName>${d}</displayShortName>`,
    ...s.incoming.flatMap((e) => server('incomingServer', e)),
    ...s.outgoing.flatMap((e) => server('outgoingServer', e)),
    '  </emailProvider>',
    '</clientConfig>',
    '',
  ].join('\n');
}

export function autodiscoverPox(address: string, s: ClientSettings): string {
  const a = xmlEscape(address);
  const best = (proto: ClientEndpoint['protocol'], l: ClientEndpoint[]) => l.find((e) => e.protocol === proto);
  const protocols = [best('imap', s.incoming), best('pop3', s.incoming), best('smtp', s.outgoing)].filter((e) => e !== undefined);
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">',
    '  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">',
    '    <Account>',
    '      <AccountType>email</AccountType>',
    '      <Action>settings</Action>',
    ...protocols.flatMap((e) => [
      '      <Protocol>',
      `        <Type>${e.protocol === 'pop3' ? 'POP3' : e.protocol.toUpperCase()}</Type>`,
      `        <Server>${xmlEscape(e.host)}</Server>`,
      `        <Port>${e.port}</Port>`,
      '        <DomainRequired>off</DomainRequired>',
      `        <LoginName>${a}</LoginName>`,
      '        <SPA>off</SPA>',
      `        <SSL>on</SSL>`,
      `        <Encryption>${e.tls === 'implicit' ? 'SSL' : 'TLS'}</Encryption>`,
      '        <AuthRequired>on</AuthRequired>',
      ...(e.protocol === 'smtp' ? ['        <UsePOPAuth>off</UsePOPAuth>', '        <SMTPLast>off</SMTPLast>'] : []),
      '      </Protocol>',
    ]),
    '    </Account>',
    '  </Response>',
    '</Autodiscover>',
    '',
  ].join('\n');
}

/** A stable UUID (RFC 4122 layout, version 5-like) so a downloaded profile replaces the previous one. */
function stableUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`.toUpperCase();
}

export function appleProfile(address: string, domain: string, s: ClientSettings): string | undefined {
  const inc = s.incoming.find((e) => e.protocol === 'imap') ?? s.incoming[0];
  const out = s.outgoing[0];
  if (!inc || !out) return undefined;
  const reverse = domain.split('.').reverse().join('.');
  const str = (k: string, v: string) => `\t\t\t<key>${k}</key>\n\t\t\t<string>${xmlEscape(v)}</string>`;
  const int = (k: string, v: number) => `\t\t\t<key>${k}</key>\n\t\t\t<integer>${v}</integer>`;
  const bool = (k: string, v: boolean) => `\t\t\t<key>${k}</key>\n\t\t\t<${v}/>`;
  const mail = [
    str('EmailAccountDescription', address),
    str('EmailAccountName', address),
    str('EmailAccountType', inc.protocol === 'imap' ? 'EmailTypeIMAP' : 'EmailTypePOP'),
    str('EmailAddress', address),
    str('IncomingMailServerAuthentication', 'EmailAuthPassword'),
    str('IncomingMailServerHostName', inc.host),
    int('IncomingMailServerPortNumber', inc.port),
    bool('IncomingMailServerUseSSL', inc.tls === 'implicit'),
    str('IncomingMailServerUsername', address),
    str('OutgoingMailServerAuthentication', 'EmailAuthPassword'),
    str('OutgoingMailServerHostName', out.host),
    int('OutgoingMailServerPortNumber', out.port),
    bool('OutgoingMailServerUseSSL', out.tls === 'implicit'),
    str('OutgoingMailServerUsername', address),
    bool('OutgoingPasswordSameAsIncomingPassword', true),
    str('PayloadDescription', `Mail account ${address}`),
    str('PayloadDisplayName', `${domain} mail`),
    str('PayloadIdentifier', `${reverse}.postern.mail.${stableUuid('m' + address)}`),
    str('PayloadType', 'com.apple.mail.managed'),
    str('PayloadUUID', stableUuid('m' + address)),
    int('PayloadVersion', 1),
  ].join('\n');
  const top = (k: string, v: string) => `\t<key>${k}</key>\n\t<string>${xmlEscape(v)}</string>`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    '<dict>',
    '\t<key>PayloadContent</key>',
    '\t<array>',
    '\t\t<dict>',
    mail,
    '\t\t</dict>',
    '\t</array>',
    top('PayloadDescription', `Sets up the mail account ${address} (IMAP/POP3 and SMTP submission).`),
    top('PayloadDisplayName', `${domain} mail`),
    top('PayloadIdentifier', `${reverse}.postern.${stableUuid('p' + address)}`),
    '\t<key>PayloadRemovalDisallowed</key>\n\t<false/>',
    top('PayloadType', 'Configuration'),
    top('PayloadUUID', stableUuid('p' + address)),
    '\t<key>PayloadVersion</key>\n\t<integer>1</integer>',
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}
