/**
 * mail-params - Postfix's parameter table: every main.cf parameter Postern knows, with Postfix
 * 3.7's default text exactly as `postconf -d` prints it (unexpanded: `$myhostname`,
 * `${{$compatibility_level} <level {2} ? {$mydestination} : {}}`), its type, and one line of
 * documentation (the first sentence of postconf(5)).
 *
 * The table was generated from Debian's postfix 3.7.11 (`postconf -c DIR -d` with an empty
 * master.cf) and /usr/share/man/man5/postconf.5; src/cli/postconf.test.ts re-checks every default
 * against the installed postconf. Paths are Debian's build-time values (daemon_directory etc.).
 *
 * A few defaults are not text but computed from the machine, as Postfix computes them
 * (global/mail_params.c, global/mynetworks.c) — see COMPUTED below and the functions
 * defaultMyHostname(), defaultMyDomain(), defaultMyNetworks(). Their table entry holds ''.
 *
 * Deliberate differences from Postfix (docs/main-cf.md): mail_name is "Postern" and mail_version
 * is Postern's version; config_directory defaults to the directory actually in use.
 *
 * Per-transport parameters that Postfix derives from master.cf (`<service>_destination_concurrency_limit`
 * and friends) are produced by serviceParams() below.
 */
import { hostname, networkInterfaces } from 'node:os';

export type ParamType = 'str' | 'list' | 'bool' | 'int' | 'time' | 'size';

export interface ParamSpec {
  name: string;
  /** Postfix's default as `postconf -d` prints it (unexpanded); '' for the computed ones. */
  default: string;
  type: ParamType;
  /** For 'time': the unit of a bare number (s, m, h, d, w). */
  unit?: string;
  doc: string;
}

function p(name: string, def: string, type: ParamType, unitOrDoc: string, doc?: string): ParamSpec {
  return doc === undefined ? { name, default: def, type, doc: unitOrDoc } : { name, default: def, type, unit: unitOrDoc, doc };
}

/** Postern's identity where Postfix prints its own (mail_name, mail_version). */
export const POSTERN_MAIL_NAME = 'Postern';
export const POSTERN_MAIL_VERSION = '0.1.0';

export const PARAMS: readonly ParamSpec[] = [
  p('2bounce_notice_recipient', 'postmaster', 'str', 'The recipient of undeliverable mail that cannot be returned to the sender.'),
  p('access_map_defer_code', '450', 'int', 'The numerical Postfix SMTP server response code for an access(5) map "defer" action, including "defer_if_permit" or "defer_if_reject".'),
  p('access_map_reject_code', '554', 'int', 'The numerical Postfix SMTP server response code for an access(5) map "reject" action.'),
  p('address_verify_cache_cleanup_interval', '12h', 'time', 'h', 'The amount of time between verify(8) address verification database cleanup runs.'),
  p('address_verify_default_transport', '$default_transport', 'str', 'Overrides the default_transport parameter setting for address verification probes.'),
  p('address_verify_local_transport', '$local_transport', 'str', 'Overrides the local_transport parameter setting for address verification probes.'),
  p('address_verify_map', 'btree:$data_directory/verify_cache', 'str', 'Lookup table for persistent address verification status storage.'),
  p('address_verify_negative_cache', 'yes', 'bool', 'Enable caching of failed address verification probe results.'),
  p('address_verify_negative_expire_time', '3d', 'time', 'd', 'The time after which a failed probe expires from the address verification cache.'),
  p('address_verify_negative_refresh_time', '3h', 'time', 'h', 'The time after which a failed address verification probe needs to be refreshed.'),
  p('address_verify_pending_request_limit', '5000', 'int', 'A safety limit that prevents address verification requests from overwhelming the Postfix queue.'),
  p('address_verify_poll_count', '${stress?{1}:{3}}', 'int', 'How many times to query the verify(8) service for the completion of an address verification request in progress.'),
  p('address_verify_poll_delay', '3s', 'time', 's', 'The delay between queries for the completion of an address verification request in progress.'),
  p('address_verify_positive_expire_time', '31d', 'time', 'd', 'The time after which a successful probe expires from the address verification cache.'),
  p('address_verify_positive_refresh_time', '7d', 'time', 'd', 'The time after which a successful address verification probe needs to be refreshed.'),
  p('address_verify_relay_transport', '$relay_transport', 'str', 'Overrides the relay_transport parameter setting for address verification probes.'),
  p('address_verify_relayhost', '$relayhost', 'str', 'Overrides the relayhost parameter setting for address verification probes.'),
  p('address_verify_sender', '$double_bounce_sender', 'str', 'The sender address to use in address verification probes; prior to Postfix 2.5 the default was "postmaster".'),
  p('address_verify_sender_dependent_default_transport_maps', '$sender_dependent_default_transport_maps', 'list', 'Overrides the sender_dependent_default_transport_maps parameter setting for address verification probes.'),
  p('address_verify_sender_dependent_relayhost_maps', '$sender_dependent_relayhost_maps', 'list', 'Overrides the sender_dependent_relayhost_maps parameter setting for address verification probes.'),
  p('address_verify_sender_ttl', '0s', 'time', 's', 'The time between changes in the time-dependent portion of address verification probe sender addresses.'),
  p('address_verify_service_name', 'verify', 'str', 'The name of the verify(8) address verification service.'),
  p('address_verify_transport_maps', '$transport_maps', 'list', 'Overrides the transport_maps parameter setting for address verification probes.'),
  p('address_verify_virtual_transport', '$virtual_transport', 'str', 'Overrides the virtual_transport parameter setting for address verification probes.'),
  p('alias_database', 'hash:/etc/aliases', 'str', 'The alias databases for local(8) delivery that are updated with "newaliases" or with "sendmail -bi".'),
  p('alias_maps', 'hash:/etc/aliases, nis:mail.aliases', 'list', 'The alias databases that are used for local(8) delivery.'),
  p('allow_mail_to_commands', 'alias, forward', 'str', 'Restrict local(8) mail delivery to external commands.'),
  p('allow_mail_to_files', 'alias, forward', 'str', 'Restrict local(8) mail delivery to external files.'),
  p('allow_min_user', 'no', 'bool', 'Allow a sender or recipient address to have `-\' as the first character.'),
  p('allow_percent_hack', 'yes', 'bool', 'Enable the rewriting of the form "user%domain" to "user@domain".'),
  p('allow_untrusted_routing', 'no', 'bool', 'Forward mail with sender-specified routing (user[@%!]remote[@%!]site) from untrusted clients to destinations matching $relay_domains.'),
  p('alternate_config_directories', '', 'str', 'A list of non-default Postfix configuration directories that may be specified with "-c config_directory" on the command line (in the case of sendmail(1),...'),
  p('always_add_missing_headers', 'no', 'bool', 'Always add (Resent-) From:, To:, Date: or Message-ID: headers when not present.'),
  p('always_bcc', '', 'str', 'Optional address that receives a "blind carbon copy" of each message that is received by the Postfix mail system.'),
  p('anvil_rate_time_unit', '60s', 'time', 's', 'The time unit over which client connection rates and other rates are calculated.'),
  p('anvil_status_update_time', '600s', 'time', 's', 'How frequently the anvil(8) connection and rate limiting server logs peak usage information.'),
  p('append_at_myorigin', 'yes', 'bool', 'With locally submitted mail, append the string "@$myorigin" to mail addresses without domain information.'),
  p('append_dot_mydomain', '${{$compatibility_level} <level {1} ? {yes} : {no}}', 'bool', 'With locally submitted mail, append the string ".$mydomain" to addresses that have no ".domain" information.'),
  p('application_event_drain_time', '100s', 'time', 's', 'How long the postkick(1) command waits for a request to enter the Postfix daemon process input buffer before giving up.'),
  p('authorized_flush_users', 'static:anyone', 'str', 'List of users who are authorized to flush the queue.'),
  p('authorized_mailq_users', 'static:anyone', 'str', 'List of users who are authorized to view the queue.'),
  p('authorized_submit_users', 'static:anyone', 'str', 'List of users who are authorized to submit mail with the sendmail(1) command (and with the privileged postdrop(1) helper command).'),
  p('backwards_bounce_logfile_compatibility', 'yes', 'bool', 'Produce additional bounce(8) logfile records that can be read by Postfix versions before 2.0.'),
  p('berkeley_db_create_buffer_size', '16777216', 'size', 'The per-table I/O buffer size for programs that create Berkeley DB hash or btree tables.'),
  p('berkeley_db_read_buffer_size', '131072', 'size', 'The per-table I/O buffer size for programs that read Berkeley DB hash or btree tables.'),
  p('best_mx_transport', '', 'str', 'Where the Postfix SMTP client should deliver mail when it detects a "mail loops back to myself" error condition.'),
  p('biff', 'yes', 'bool', 'Whether or not to use the local biff service.'),
  p('body_checks', '', 'list', 'Optional lookup tables for content inspection as specified in the body_checks(5) manual page.'),
  p('body_checks_size_limit', '51200', 'size', 'How much text in a message body segment (or attachment, if you prefer to use that term) is subjected to body_checks inspection.'),
  p('bounce_notice_recipient', 'postmaster', 'str', 'The recipient of postmaster notifications with the message headers of mail that Postfix did not deliver and of SMTP conversation transcripts of mail that...'),
  p('bounce_queue_lifetime', '5d', 'time', 'd', 'Consider a bounce message as undeliverable, when delivery fails with a temporary error, and the time in the queue has reached the bounce_queue_lifetime limit.'),
  p('bounce_service_name', 'bounce', 'str', 'The name of the bounce(8) service.'),
  p('bounce_size_limit', '50000', 'size', 'The maximal amount of original message text that is sent in a non-delivery notification.'),
  p('bounce_template_file', '', 'str', 'Pathname of a configuration file with bounce message templates.'),
  p('broken_sasl_auth_clients', 'no', 'bool', 'Enable interoperability with remote SMTP clients that implement an obsolete version of the AUTH command (RFC 4954).'),
  p('canonical_classes', 'envelope_sender, envelope_recipient, header_sender, header_recipient', 'list', 'What addresses are subject to canonical_maps address mapping.'),
  p('canonical_maps', '', 'list', 'Optional address mapping lookup tables for message headers and envelopes.'),
  p('cleanup_replace_stray_cr_lf', 'yes', 'bool', 'Replace each stray <CR> or <LF> character in message content with a space character, to prevent outbound SMTP smuggling, and to make the evaluation of...'),
  p('cleanup_service_name', 'cleanup', 'str', 'The name of the cleanup(8) service.'),
  p('command_directory', '/usr/sbin', 'str', 'The location of all postfix administrative commands.'),
  p('command_execution_directory', '', 'str', 'The local(8) delivery agent working directory for delivery to external commands.'),
  p('command_expansion_filter', '1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 'str', 'Restrict the characters that the local(8) delivery agent allows in $name expansions of $mailbox_command and $command_execution_directory.'),
  p('command_time_limit', '1000s', 'time', 's', 'Time limit for delivery to external commands.'),
  p('compatibility_level', '0', 'int', 'A safety net that causes Postfix to run with backwards-compatible default settings after an upgrade to a newer Postfix version.'),
  p('config_directory', '', 'str', 'The default location of the Postfix main.cf and master.cf configuration files.'),
  p('confirm_delay_cleared', 'no', 'bool', 'After sending a "your message is delayed" notification, inform the sender when the delay clears up.'),
  p('connection_cache_protocol_timeout', '5s', 'time', 's', 'Time limit for connection cache connect, send or receive operations.'),
  p('connection_cache_service_name', 'scache', 'str', 'The name of the scache(8) connection cache service.'),
  p('connection_cache_status_update_time', '600s', 'time', 's', 'How frequently the scache(8) server logs usage statistics with connection cache hit and miss rates for logical destinations and for physical endpoints.'),
  p('connection_cache_ttl_limit', '2s', 'time', 's', 'The maximal time-to-live value that the scache(8) connection cache server allows.'),
  p('content_filter', '', 'str', 'After the message is queued, send the entire message to the specified transport:destination.'),
  p('cyrus_sasl_config_path', '', 'str', 'Search path for Cyrus SASL application configuration files, currently used only to locate the $smtpd_sasl_path.conf file.'),
  p('daemon_directory', '/usr/lib/postfix/sbin', 'str', 'The directory with Postfix support programs and daemon programs.'),
  p('daemon_table_open_error_is_fatal', 'no', 'bool', 'How a Postfix daemon process handles errors while opening lookup tables: gradual degradation or immediate termination.'),
  p('daemon_timeout', '18000s', 'time', 's', 'How much time a Postfix daemon process may take to handle a request before it is terminated by a built-in watchdog timer.'),
  p('data_directory', '/var/lib/postfix', 'str', 'The directory with Postfix-writable data files (for example: caches, pseudo-random numbers).'),
  p('debug_peer_level', '2', 'int', 'The increment in verbose logging level when a nexthop destination, remote client or server name or network address matches a pattern given with the...'),
  p('debug_peer_list', '', 'list', 'Optional list of nexthop destination, remote client or server name or network address patterns that, if matched, cause the verbose logging level to increase...'),
  p('debugger_command', '', 'str', 'The external command to execute when a Postfix daemon program is invoked with the -D option.'),
  p('default_database_type', 'hash', 'str', 'The default database type for use in newaliases(1), postalias(1) and postmap(1) commands.'),
  p('default_delivery_slot_cost', '5', 'int', 'How often the Postfix queue manager\'s scheduler is allowed to preempt delivery of one message with another.'),
  p('default_delivery_slot_discount', '50', 'int', 'The default value for transport-specific _delivery_slot_discount settings.'),
  p('default_delivery_slot_loan', '3', 'int', 'The default value for transport-specific _delivery_slot_loan settings.'),
  p('default_delivery_status_filter', '', 'str', 'Optional filter to replace the delivery status code or explanatory text of successful or unsuccessful deliveries.'),
  p('default_destination_concurrency_failed_cohort_limit', '1', 'int', 'How many pseudo-cohorts must suffer connection or handshake failure before a specific destination is considered unavailable (and further delivery is suspended).'),
  p('default_destination_concurrency_limit', '20', 'int', 'The default maximal number of parallel deliveries to the same destination.'),
  p('default_destination_concurrency_negative_feedback', '1', 'int', 'The per-destination amount of delivery concurrency negative feedback, after a delivery completes with a connection or handshake failure.'),
  p('default_destination_concurrency_positive_feedback', '1', 'int', 'The per-destination amount of delivery concurrency positive feedback, after a delivery completes without connection or handshake failure.'),
  p('default_destination_rate_delay', '0s', 'time', 's', 'The default amount of delay that is inserted between individual message deliveries to the same destination and over the same message delivery transport.'),
  p('default_destination_recipient_limit', '50', 'int', 'The default maximal number of recipients per message delivery.'),
  p('default_extra_recipient_limit', '1000', 'int', 'The default value for the extra per-transport limit imposed on the number of in-memory recipients.'),
  p('default_filter_nexthop', '', 'str', 'When a content_filter or FILTER request specifies no explicit next-hop destination, use $default_filter_nexthop instead; when that value is empty, use the...'),
  p('default_minimum_delivery_slots', '3', 'int', 'How many recipients a message must have in order to invoke the Postfix queue manager\'s scheduling algorithm at all.'),
  p('default_privs', 'nobody', 'str', 'The default rights used by the local(8) delivery agent for delivery to an external file or command.'),
  p('default_process_limit', '100', 'int', 'The default maximal number of Postfix child processes that provide a given service.'),
  p('default_rbl_reply', '$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}', 'str', 'The default Postfix SMTP server response template for a request that is rejected by an RBL-based restriction.'),
  p('default_recipient_limit', '20000', 'int', 'The default per-transport upper limit on the number of in-memory recipients.'),
  p('default_recipient_refill_delay', '5s', 'time', 's', 'The default per-transport maximum delay between refilling recipients.'),
  p('default_recipient_refill_limit', '100', 'int', 'The default per-transport limit on the number of recipients refilled at once.'),
  p('default_transport', 'smtp', 'str', 'The default mail delivery transport and next-hop destination for destinations that do not match $mydestination, $inet_interfaces, $proxy_interfaces,...'),
  p('default_transport_rate_delay', '0s', 'time', 's', 'The default amount of delay that is inserted between individual message deliveries over the same message delivery transport, regardless of destination.'),
  p('default_verp_delimiters', '+=', 'str', 'The two default VERP delimiter characters.'),
  p('defer_code', '450', 'int', 'The numerical Postfix SMTP server response code when a remote SMTP client request is rejected by the "defer" restriction.'),
  p('defer_service_name', 'defer', 'str', 'The name of the defer service.'),
  p('defer_transports', '', 'str', 'The names of message delivery transports that should not deliver mail unless someone issues "sendmail -q" or equivalent.'),
  p('delay_logging_resolution_limit', '2', 'int', 'The maximal number of digits after the decimal point when logging sub-second delay values.'),
  p('delay_notice_recipient', 'postmaster', 'str', 'The recipient of postmaster notifications with the message headers of mail that cannot be delivered within $delay_warning_time time units.'),
  p('delay_warning_time', '0h', 'time', 'h', 'The time after which the sender receives a copy of the message headers of mail that is still queued.'),
  p('deliver_lock_attempts', '20', 'int', 'The maximal number of attempts to acquire an exclusive lock on a mailbox file or bounce(8) logfile.'),
  p('deliver_lock_delay', '1s', 'time', 's', 'The time between attempts to acquire an exclusive lock on a mailbox file or bounce(8) logfile.'),
  p('destination_concurrency_feedback_debug', 'no', 'bool', 'Make the queue manager\'s feedback algorithm verbose for performance analysis purposes.'),
  p('detect_8bit_encoding_header', 'yes', 'bool', 'Automatically detect 8BITMIME body content by looking at Content-Transfer-Encoding: message headers; historically, this behavior was hard-coded to be...'),
  p('disable_dns_lookups', 'no', 'bool', 'Disable DNS lookups in the Postfix SMTP and LMTP clients.'),
  p('disable_mime_input_processing', 'no', 'bool', 'Turn off MIME processing while receiving mail.'),
  p('disable_mime_output_conversion', 'no', 'bool', 'Disable the conversion of 8BITMIME format to 7BIT format.'),
  p('disable_verp_bounces', 'no', 'bool', 'Disable sending one bounce report per recipient.'),
  p('disable_vrfy_command', 'no', 'bool', 'Disable the SMTP VRFY command.'),
  p('dns_ncache_ttl_fix_enable', 'no', 'bool', 'Enable a workaround for future libc incompatibility.'),
  p('dnsblog_reply_delay', '0s', 'time', 's', 'A debugging aid to artificially delay DNS responses.'),
  p('dnsblog_service_name', 'dnsblog', 'str', 'The name of the dnsblog(8) service entry in master.cf.'),
  p('dnssec_probe', 'ns:.', 'str', 'The DNS query type (default: "ns") and DNS query name (default: ".") that Postfix may use to determine whether DNSSEC validation is available.'),
  p('dont_remove', '0', 'int', 'Don\'t remove queue files and save them to the "saved" mail queue.'),
  p('double_bounce_sender', 'double-bounce', 'str', 'The sender address of postmaster notifications that are generated by the mail system.'),
  p('duplicate_filter_limit', '1000', 'int', 'The maximal number of addresses remembered by the address duplicate filter for aliases(5) or virtual(5) alias expansion, or for showq(8) queue displays.'),
  p('empty_address_default_transport_maps_lookup_key', '<>', 'str', 'The sender_dependent_default_transport_maps search string that will be used instead of the null sender address.'),
  p('empty_address_local_login_sender_maps_lookup_key', '<>', 'str', 'The lookup key to be used in local_login_sender_maps tables, instead of the null sender address.'),
  p('empty_address_recipient', 'MAILER-DAEMON', 'str', 'The recipient of mail addressed to the null address.'),
  p('empty_address_relayhost_maps_lookup_key', '<>', 'str', 'The sender_dependent_relayhost_maps search string that will be used instead of the null sender address.'),
  p('enable_idna2003_compatibility', 'no', 'bool', 'Enable \'transitional\' compatibility between IDNA2003 and IDNA2008, when converting UTF-8 domain names to/from the ASCII form that is used for DNS lookups.'),
  p('enable_long_queue_ids', 'no', 'bool', 'Enable long, non-repeating, queue IDs (queue file names).'),
  p('enable_original_recipient', 'yes', 'bool', 'Enable support for the original recipient address after an address is rewritten to a different address (for example with aliasing or with canonical mapping).'),
  p('enable_threaded_bounces', 'no', 'bool', 'Enable non-delivery, success, and delay notifications that link to the original message by including a References: and In-Reply-To: header with the original...'),
  p('error_notice_recipient', 'postmaster', 'str', 'The recipient of postmaster notifications about mail delivery problems that are caused by policy, resource, software or protocol errors.'),
  p('error_service_name', 'error', 'str', 'The name of the error(8) pseudo delivery agent.'),
  p('execution_directory_expansion_filter', '1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 'str', 'Restrict the characters that the local(8) delivery agent allows in $name expansions of $command_execution_directory.'),
  p('expand_owner_alias', 'no', 'bool', 'When delivering to an alias "aliasname" that has an "owner-aliasname" companion alias, set the envelope sender address to the expansion of the...'),
  p('export_environment', 'TZ MAIL_CONFIG LANG', 'str', 'The list of environment variables that a Postfix process will export to non-Postfix processes.'),
  p('fallback_transport', '', 'str', 'Optional message delivery transport that the local(8) delivery agent should use for names that are not found in the aliases(5) or UNIX password database.'),
  p('fallback_transport_maps', '', 'list', 'Optional lookup tables with per-recipient message delivery transports for recipients that the local(8) delivery agent could not find in the aliases(5) or...'),
  p('fast_flush_domains', '$relay_domains', 'list', 'Optional list of destinations that are eligible for per-destination logfiles with mail that is queued to those destinations.'),
  p('fast_flush_purge_time', '7d', 'time', 'd', 'The time after which an empty per-destination "fast flush" logfile is deleted.'),
  p('fast_flush_refresh_time', '12h', 'time', 'h', 'The time after which a non-empty but unread per-destination "fast flush" logfile needs to be refreshed.'),
  p('fault_injection_code', '0', 'int', 'Force specific internal tests to fail, to test the handling of errors that are difficult to reproduce otherwise.'),
  p('flush_service_name', 'flush', 'str', 'The name of the flush(8) service.'),
  p('fork_attempts', '5', 'int', 'The maximal number of attempts to fork() a child process.'),
  p('fork_delay', '1s', 'time', 's', 'The delay between attempts to fork() a child process.'),
  p('forward_expansion_filter', '1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 'str', 'Restrict the characters that the local(8) delivery agent allows in $name expansions of $forward_path.'),
  p('forward_path', '$home/.forward${recipient_delimiter}${extension}, $home/.forward', 'str', 'The local(8) delivery agent search list for finding a .forward file with user-specified delivery methods.'),
  p('frozen_delivered_to', 'yes', 'bool', 'Update the local(8) delivery agent\'s idea of the Delivered-To: address (see prepend_delivered_header) only once, at the start of a delivery attempt; do not...'),
  p('hash_queue_depth', '1', 'int', 'The number of subdirectory levels for queue directories listed with the hash_queue_names parameter.'),
  p('hash_queue_names', 'deferred, defer', 'list', 'The names of queue directories that are split across multiple subdirectory levels.'),
  p('header_address_token_limit', '10240', 'int', 'The maximal number of address tokens are allowed in an address message header.'),
  p('header_checks', '', 'list', 'Optional lookup tables for content inspection of primary non-MIME message headers, as specified in the header_checks(5) manual page.'),
  p('header_from_format', 'standard', 'str', 'The format of the Postfix-generated From: header.'),
  p('header_size_limit', '102400', 'size', 'The maximal amount of memory in bytes for storing a message header.'),
  p('helpful_warnings', 'yes', 'bool', 'Log warnings about problematic configuration settings, and provide helpful suggestions.'),
  p('home_mailbox', '', 'str', 'Optional pathname of a mailbox file relative to a local(8) user\'s home directory.'),
  p('hopcount_limit', '50', 'int', 'The maximal number of Received: message headers that is allowed in the primary message headers.'),
  p('html_directory', '/usr/share/doc/postfix/html', 'str', 'The location of Postfix HTML files that describe how to build, configure or operate a specific Postfix subsystem or feature.'),
  p('ignore_mx_lookup_error', 'no', 'bool', 'Ignore DNS MX lookups that produce no response.'),
  p('import_environment', 'MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME', 'str', 'The list of environment variables that a privileged Postfix process will import from a non-Postfix parent process, or name=value environment overrides.'),
  p('in_flow_delay', '1s', 'time', 's', 'Time to pause before accepting a new message, when the message arrival rate exceeds the message delivery rate.'),
  p('inet_interfaces', 'all', 'list', 'The network interface addresses that this mail system receives mail on.'),
  p('inet_protocols', 'all', 'list', 'The Internet protocols Postfix will attempt to use when making or accepting connections.'),
  p('info_log_address_format', 'external', 'str', 'The email address form that will be used in non-debug logging (info, warning, etc.).'),
  p('initial_destination_concurrency', '5', 'int', 'The initial per-destination concurrency level for parallel delivery to the same destination.'),
  p('internal_mail_filter_classes', '', 'list', 'What categories of Postfix-generated mail are subject to before-queue content inspection by non_smtpd_milters, header_checks and body_checks.'),
  p('invalid_hostname_reject_code', '501', 'int', 'The numerical Postfix SMTP server response code when the client HELO or EHLO command parameter is rejected by the reject_invalid_helo_hostname restriction.'),
  p('ipc_idle', '5s', 'time', 's', 'The time after which a client closes an idle internal communication channel.'),
  p('ipc_timeout', '3600s', 'time', 's', 'The time limit for sending or receiving information over an internal communication channel.'),
  p('ipc_ttl', '1000s', 'time', 's', 'The time after which a client closes an active internal communication channel.'),
  p('known_tcp_ports', 'lmtp=24, smtp=25, smtps=submissions=465, submission=587', 'str', 'Optional setting that avoids lookups in the services(5) database.'),
  p('line_length_limit', '2048', 'int', 'Upon input, long lines are chopped up into pieces of at most this length; upon delivery, long lines are reconstructed.'),
  p('lmdb_map_size', '16777216', 'size', 'The initial OpenLDAP LMDB database size limit in bytes.'),
  p('lmtp_address_preference', 'any', 'str', 'The LMTP-specific version of the smtp_address_preference configuration parameter.'),
  p('lmtp_address_verify_target', 'rcpt', 'str', 'The LMTP-specific version of the smtp_address_verify_target configuration parameter.'),
  p('lmtp_assume_final', 'no', 'bool', 'When a remote LMTP server announces no DSN support, assume that the server performs final delivery, and send "delivered" delivery status notifications...'),
  p('lmtp_balance_inet_protocols', 'yes', 'bool', 'The LMTP-specific version of the smtp_balance_inet_protocols configuration parameter.'),
  p('lmtp_bind_address', '', 'str', 'The LMTP-specific version of the smtp_bind_address configuration parameter.'),
  p('lmtp_bind_address6', '', 'str', 'The LMTP-specific version of the smtp_bind_address6 configuration parameter.'),
  p('lmtp_bind_address_enforce', 'no', 'bool', 'The LMTP-specific version of the smtp_bind_address_enforce configuration parameter.'),
  p('lmtp_body_checks', '', 'list', 'The LMTP-specific version of the smtp_body_checks configuration parameter.'),
  p('lmtp_cname_overrides_servername', 'no', 'bool', 'The LMTP-specific version of the smtp_cname_overrides_servername configuration parameter.'),
  p('lmtp_connect_timeout', '0s', 'time', 's', 'The Postfix LMTP client time limit for completing a TCP connection, or zero (use the operating system built-in time limit).'),
  p('lmtp_connection_cache_destinations', '', 'str', 'The LMTP-specific version of the smtp_connection_cache_destinations configuration parameter.'),
  p('lmtp_connection_cache_on_demand', 'yes', 'bool', 'The LMTP-specific version of the smtp_connection_cache_on_demand configuration parameter.'),
  p('lmtp_connection_cache_time_limit', '2s', 'time', 's', 'The LMTP-specific version of the smtp_connection_cache_time_limit configuration parameter.'),
  p('lmtp_connection_reuse_count_limit', '0', 'int', 'The LMTP-specific version of the smtp_connection_reuse_count_limit configuration parameter.'),
  p('lmtp_connection_reuse_time_limit', '300s', 'time', 's', 'The LMTP-specific version of the smtp_connection_reuse_time_limit configuration parameter.'),
  p('lmtp_data_done_timeout', '600s', 'time', 's', 'The Postfix LMTP client time limit for sending the LMTP ".", and for receiving the remote LMTP server response.'),
  p('lmtp_data_init_timeout', '120s', 'time', 's', 'The Postfix LMTP client time limit for sending the LMTP DATA command, and for receiving the remote LMTP server response.'),
  p('lmtp_data_xfer_timeout', '180s', 'time', 's', 'The Postfix LMTP client time limit for sending the LMTP message content.'),
  p('lmtp_defer_if_no_mx_address_found', 'no', 'bool', 'The LMTP-specific version of the smtp_defer_if_no_mx_address_found configuration parameter.'),
  p('lmtp_delivery_status_filter', '$default_delivery_status_filter', 'str', 'The LMTP-specific version of the smtp_delivery_status_filter configuration parameter.'),
  p('lmtp_discard_lhlo_keyword_address_maps', '', 'list', 'Lookup tables, indexed by the remote LMTP server address, with case insensitive lists of LHLO keywords (pipelining, starttls, auth, etc.) that the Postfix...'),
  p('lmtp_discard_lhlo_keywords', '', 'str', 'A case insensitive list of LHLO keywords (pipelining, starttls, auth, etc.) that the Postfix LMTP client will ignore in the LHLO response from a remote LMTP...'),
  p('lmtp_dns_reply_filter', '', 'list', 'Optional filter for Postfix LMTP client DNS lookup results.'),
  p('lmtp_dns_resolver_options', '', 'list', 'The LMTP-specific version of the smtp_dns_resolver_options configuration parameter.'),
  p('lmtp_dns_support_level', '', 'str', 'The LMTP-specific version of the smtp_dns_support_level configuration parameter.'),
  p('lmtp_enforce_tls', 'no', 'bool', 'The LMTP-specific version of the smtp_enforce_tls configuration parameter.'),
  p('lmtp_fallback_relay', '', 'str', 'Optional list of relay hosts for LMTP destinations that can\'t be found or that are unreachable.'),
  p('lmtp_generic_maps', '', 'list', 'The LMTP-specific version of the smtp_generic_maps configuration parameter.'),
  p('lmtp_header_checks', '', 'list', 'The LMTP-specific version of the smtp_header_checks configuration parameter.'),
  p('lmtp_host_lookup', 'dns', 'list', 'The LMTP-specific version of the smtp_host_lookup configuration parameter.'),
  p('lmtp_lhlo_name', '$myhostname', 'str', 'The hostname to send in the LMTP LHLO command.'),
  p('lmtp_lhlo_timeout', '300s', 'time', 's', 'The Postfix LMTP client time limit for sending the LHLO command, and for receiving the initial remote LMTP server response.'),
  p('lmtp_line_length_limit', '998', 'int', 'The LMTP-specific version of the smtp_line_length_limit configuration parameter.'),
  p('lmtp_mail_timeout', '300s', 'time', 's', 'The Postfix LMTP client time limit for sending the MAIL FROM command, and for receiving the remote LMTP server response.'),
  p('lmtp_mime_header_checks', '', 'list', 'The LMTP-specific version of the smtp_mime_header_checks configuration parameter.'),
  p('lmtp_min_data_rate', '500', 'int', 'The LMTP-specific version of the smtp_min_data_rate configuration parameter.'),
  p('lmtp_mx_address_limit', '5', 'int', 'The LMTP-specific version of the smtp_mx_address_limit configuration parameter.'),
  p('lmtp_mx_session_limit', '2', 'int', 'The LMTP-specific version of the smtp_mx_session_limit configuration parameter.'),
  p('lmtp_nested_header_checks', '', 'list', 'The LMTP-specific version of the smtp_nested_header_checks configuration parameter.'),
  p('lmtp_per_request_deadline', '${lmtp_per_record_deadline?{$lmtp_per_record_deadline}:{no}}', 'str', 'The LMTP-specific version of the smtp_per_request_deadline configuration parameter.'),
  p('lmtp_pix_workaround_delay_time', '10s', 'time', 's', 'The LMTP-specific version of the smtp_pix_workaround_delay_time configuration parameter.'),
  p('lmtp_pix_workaround_maps', '', 'list', 'The LMTP-specific version of the smtp_pix_workaround_maps configuration parameter.'),
  p('lmtp_pix_workaround_threshold_time', '500s', 'time', 's', 'The LMTP-specific version of the smtp_pix_workaround_threshold_time configuration parameter.'),
  p('lmtp_pix_workarounds', 'disable_esmtp,delay_dotcrlf', 'str', 'The LMTP-specific version of the smtp_pix_workaround configuration parameter.'),
  p('lmtp_quit_timeout', '300s', 'time', 's', 'The Postfix LMTP client time limit for sending the QUIT command, and for receiving the remote LMTP server response.'),
  p('lmtp_quote_rfc821_envelope', 'yes', 'bool', 'The LMTP-specific version of the smtp_quote_rfc821_envelope configuration parameter.'),
  p('lmtp_randomize_addresses', 'yes', 'bool', 'The LMTP-specific version of the smtp_randomize_addresses configuration parameter.'),
  p('lmtp_rcpt_timeout', '300s', 'time', 's', 'The Postfix LMTP client time limit for sending the RCPT TO command, and for receiving the remote LMTP server response.'),
  p('lmtp_reply_filter', '', 'list', 'The LMTP-specific version of the smtp_reply_filter configuration parameter.'),
  p('lmtp_rset_timeout', '20s', 'time', 's', 'The Postfix LMTP client time limit for sending the RSET command, and for receiving the remote LMTP server response.'),
  p('lmtp_sasl_auth_cache_name', '', 'str', 'The LMTP-specific version of the smtp_sasl_auth_cache_name configuration parameter.'),
  p('lmtp_sasl_auth_cache_time', '90d', 'time', 'd', 'The LMTP-specific version of the smtp_sasl_auth_cache_time configuration parameter.'),
  p('lmtp_sasl_auth_enable', 'no', 'bool', 'Enable SASL authentication in the Postfix LMTP client.'),
  p('lmtp_sasl_auth_soft_bounce', 'yes', 'bool', 'The LMTP-specific version of the smtp_sasl_auth_soft_bounce configuration parameter.'),
  p('lmtp_sasl_mechanism_filter', '', 'list', 'The LMTP-specific version of the smtp_sasl_mechanism_filter configuration parameter.'),
  p('lmtp_sasl_password_maps', '', 'list', 'Optional Postfix LMTP client lookup tables with one username:password entry per host or domain.'),
  p('lmtp_sasl_path', '', 'str', 'Implementation-specific information that is passed through to the SASL plug-in implementation that is selected with lmtp_sasl_type.'),
  p('lmtp_sasl_security_options', 'noplaintext, noanonymous', 'list', 'SASL security options; as of Postfix 2.3 the list of available features depends on the SASL client implementation that is selected with lmtp_sasl_type.'),
  p('lmtp_sasl_tls_security_options', '$lmtp_sasl_security_options', 'list', 'The LMTP-specific version of the smtp_sasl_tls_security_options configuration parameter.'),
  p('lmtp_sasl_tls_verified_security_options', '$lmtp_sasl_tls_security_options', 'list', 'The LMTP-specific version of the smtp_sasl_tls_verified_security_options configuration parameter.'),
  p('lmtp_sasl_type', 'cyrus', 'str', 'The SASL plug-in type that the Postfix LMTP client should use for authentication.'),
  p('lmtp_send_dummy_mail_auth', 'no', 'bool', 'The LMTP-specific version of the smtp_send_dummy_mail_auth configuration parameter.'),
  p('lmtp_send_xforward_command', 'no', 'bool', 'Send an XFORWARD command to the remote LMTP server when the LMTP LHLO server response announces XFORWARD support.'),
  p('lmtp_sender_dependent_authentication', 'no', 'bool', 'The LMTP-specific version of the smtp_sender_dependent_authentication configuration parameter.'),
  p('lmtp_skip_5xx_greeting', 'yes', 'bool', 'The LMTP-specific version of the smtp_skip_5xx_greeting configuration parameter.'),
  p('lmtp_skip_quit_response', 'no', 'bool', 'Wait for the response to the LMTP QUIT command.'),
  p('lmtp_starttls_timeout', '300s', 'time', 's', 'The LMTP-specific version of the smtp_starttls_timeout configuration parameter.'),
  p('lmtp_tcp_port', '24', 'int', 'The default TCP port that the Postfix LMTP client connects to.'),
  p('lmtp_tls_CAfile', '', 'str', 'The LMTP-specific version of the smtp_tls_CAfile configuration parameter.'),
  p('lmtp_tls_CApath', '', 'str', 'The LMTP-specific version of the smtp_tls_CApath configuration parameter.'),
  p('lmtp_tls_block_early_mail_reply', 'no', 'bool', 'The LMTP-specific version of the smtp_tls_block_early_mail_reply configuration parameter.'),
  p('lmtp_tls_cert_file', '', 'str', 'The LMTP-specific version of the smtp_tls_cert_file configuration parameter.'),
  p('lmtp_tls_chain_files', '', 'str', 'The LMTP-specific version of the smtp_tls_chain_files configuration parameter.'),
  p('lmtp_tls_ciphers', 'medium', 'str', 'The LMTP-specific version of the smtp_tls_ciphers configuration parameter.'),
  p('lmtp_tls_connection_reuse', 'no', 'bool', 'The LMTP-specific version of the smtp_tls_connection_reuse configuration parameter.'),
  p('lmtp_tls_dcert_file', '', 'str', 'The LMTP-specific version of the smtp_tls_dcert_file configuration parameter.'),
  p('lmtp_tls_dkey_file', '$lmtp_tls_dcert_file', 'str', 'The LMTP-specific version of the smtp_tls_dkey_file configuration parameter.'),
  p('lmtp_tls_eccert_file', '', 'str', 'The LMTP-specific version of the smtp_tls_eccert_file configuration parameter.'),
  p('lmtp_tls_eckey_file', '$lmtp_tls_eccert_file', 'str', 'The LMTP-specific version of the smtp_tls_eckey_file configuration parameter.'),
  p('lmtp_tls_enforce_peername', 'yes', 'bool', 'The LMTP-specific version of the smtp_tls_enforce_peername configuration parameter.'),
  p('lmtp_tls_exclude_ciphers', '', 'list', 'The LMTP-specific version of the smtp_tls_exclude_ciphers configuration parameter.'),
  p('lmtp_tls_fingerprint_cert_match', '', 'str', 'The LMTP-specific version of the smtp_tls_fingerprint_cert_match configuration parameter.'),
  p('lmtp_tls_fingerprint_digest', '${{$compatibility_level} <level {3.6} ? {md5} : {sha256}}', 'str', 'The LMTP-specific version of the smtp_tls_fingerprint_digest configuration parameter.'),
  p('lmtp_tls_force_insecure_host_tlsa_lookup', 'no', 'bool', 'The LMTP-specific version of the smtp_tls_force_insecure_host_tlsa_lookup configuration parameter.'),
  p('lmtp_tls_key_file', '$lmtp_tls_cert_file', 'str', 'The LMTP-specific version of the smtp_tls_key_file configuration parameter.'),
  p('lmtp_tls_loglevel', '0', 'int', 'The LMTP-specific version of the smtp_tls_loglevel configuration parameter.'),
  p('lmtp_tls_mandatory_ciphers', 'medium', 'str', 'The LMTP-specific version of the smtp_tls_mandatory_ciphers configuration parameter.'),
  p('lmtp_tls_mandatory_exclude_ciphers', '', 'list', 'The LMTP-specific version of the smtp_tls_mandatory_exclude_ciphers configuration parameter.'),
  p('lmtp_tls_mandatory_protocols', '>=TLSv1', 'list', 'The LMTP-specific version of the smtp_tls_mandatory_protocols configuration parameter.'),
  p('lmtp_tls_note_starttls_offer', 'no', 'bool', 'The LMTP-specific version of the smtp_tls_note_starttls_offer configuration parameter.'),
  p('lmtp_tls_per_site', '', 'str', 'The LMTP-specific version of the smtp_tls_per_site configuration parameter.'),
  p('lmtp_tls_policy_maps', '', 'list', 'The LMTP-specific version of the smtp_tls_policy_maps configuration parameter.'),
  p('lmtp_tls_protocols', '>=TLSv1', 'list', 'The LMTP-specific version of the smtp_tls_protocols configuration parameter.'),
  p('lmtp_tls_scert_verifydepth', '9', 'int', 'The LMTP-specific version of the smtp_tls_scert_verifydepth configuration parameter.'),
  p('lmtp_tls_secure_cert_match', 'nexthop', 'str', 'The LMTP-specific version of the smtp_tls_secure_cert_match configuration parameter.'),
  p('lmtp_tls_security_level', '', 'str', 'The LMTP-specific version of the smtp_tls_security_level configuration parameter.'),
  p('lmtp_tls_servername', '', 'str', 'The LMTP-specific version of the smtp_tls_servername configuration parameter.'),
  p('lmtp_tls_session_cache_database', '', 'str', 'The LMTP-specific version of the smtp_tls_session_cache_database configuration parameter.'),
  p('lmtp_tls_session_cache_timeout', '3600s', 'time', 's', 'The LMTP-specific version of the smtp_tls_session_cache_timeout configuration parameter.'),
  p('lmtp_tls_trust_anchor_file', '', 'str', 'The LMTP-specific version of the smtp_tls_trust_anchor_file configuration parameter.'),
  p('lmtp_tls_verify_cert_match', 'hostname', 'str', 'The LMTP-specific version of the smtp_tls_verify_cert_match configuration parameter.'),
  p('lmtp_tls_wrappermode', 'no', 'bool', 'The LMTP-specific version of the smtp_tls_wrappermode configuration parameter.'),
  p('lmtp_use_tls', 'no', 'bool', 'The LMTP-specific version of the smtp_use_tls configuration parameter.'),
  p('lmtp_xforward_timeout', '300s', 'time', 's', 'The Postfix LMTP client time limit for sending the XFORWARD command, and for receiving the remote LMTP server response.'),
  p('local_command_shell', '', 'str', 'Optional shell program for local(8) delivery to non-Postfix commands.'),
  p('local_delivery_status_filter', '$default_delivery_status_filter', 'str', 'Optional filter for the local(8) delivery agent to change the status code or explanatory text of successful or unsuccessful deliveries.'),
  p('local_destination_concurrency_limit', '2', 'int', 'The maximal number of parallel deliveries via the local mail delivery transport to the same recipient (when "local_destination_recipient_limit = 1") or the...'),
  p('local_destination_recipient_limit', '1', 'int', 'The maximal number of recipients per message delivery via the local mail delivery transport.'),
  p('local_header_rewrite_clients', 'permit_inet_interfaces', 'str', 'Rewrite message header addresses in mail from these clients and update incomplete addresses with the domain name in $myorigin or $mydomain; either don\'t...'),
  p('local_login_sender_maps', 'static:*', 'list', 'A list of lookup tables that are searched by the UNIX login name, and that return a list of allowed envelope sender patterns separated by space or comma.'),
  p('local_recipient_maps', 'proxy:unix:passwd.byname $alias_maps', 'list', 'Lookup tables with all names or addresses of local recipients: a recipient address is local when its domain matches $mydestination, $inet_interfaces or...'),
  p('local_transport', 'local:$myhostname', 'str', 'The default mail delivery transport and next-hop destination for final delivery to domains listed with mydestination, and for [ipaddress] destinations that...'),
  p('luser_relay', '', 'str', 'Optional catch-all destination for unknown local(8) recipients.'),
  p('mail_name', '', 'str', 'The mail system name that is displayed in Received: headers, in the SMTP greeting banner, and in bounced mail.'),
  p('mail_owner', 'postfix', 'str', 'The UNIX system account that owns the Postfix queue and most Postfix daemon processes.'),
  p('mail_release_date', '20240304', 'int', 'The Postfix release date, in "YYYYMMDD" format.'),
  p('mail_spool_directory', '/var/mail', 'str', 'The directory where local(8) UNIX-style mailboxes are kept.'),
  p('mail_version', '', 'str', 'The version of the mail system.'),
  p('mailbox_command', '', 'str', 'Optional external command that the local(8) delivery agent should use for mailbox delivery.'),
  p('mailbox_command_maps', '', 'list', 'Optional lookup tables with per-recipient external commands to use for local(8) mailbox delivery.'),
  p('mailbox_delivery_lock', 'fcntl, dotlock', 'str', 'How to lock a UNIX-style local(8) mailbox before attempting delivery.'),
  p('mailbox_size_limit', '51200000', 'size', 'The maximal size of any local(8) individual mailbox or maildir file, or zero (no limit).'),
  p('mailbox_transport', '', 'str', 'Optional message delivery transport that the local(8) delivery agent should use for mailbox delivery to all local recipients, whether or not they are found...'),
  p('mailbox_transport_maps', '', 'list', 'Optional lookup tables with per-recipient message delivery transports to use for local(8) mailbox delivery, whether or not the recipients are found in the...'),
  p('maillog_file', '', 'str', 'The name of an optional logfile that is written by the Postfix postlogd(8) service.'),
  p('maillog_file_compressor', 'gzip', 'str', 'The program to run after rotating $maillog_file with "postfix logrotate".'),
  p('maillog_file_prefixes', '/var, /dev/stdout', 'str', 'A list of allowed prefixes for a maillog_file value.'),
  p('maillog_file_rotate_suffix', '%Y%m%d-%H%M%S', 'str', 'The format of the suffix to append to $maillog_file while rotating the file with "postfix logrotate".'),
  p('mailq_path', '/usr/bin/mailq', 'str', 'Sendmail compatibility feature that specifies where the Postfix mailq(1) command is installed.'),
  p('manpage_directory', '/usr/share/man', 'str', 'Where the Postfix manual pages are installed.'),
  p('maps_rbl_domains', '', 'list', 'Obsolete feature: use the reject_rbl_client feature instead.'),
  p('maps_rbl_reject_code', '554', 'int', 'The numerical Postfix SMTP server response code when a remote SMTP client request is blocked by the reject_rbl_client, reject_rhsbl_client,...'),
  p('masquerade_classes', 'envelope_sender, header_sender, header_recipient', 'list', 'What addresses are subject to address masquerading.'),
  p('masquerade_domains', '', 'list', 'Optional list of domains whose subdomain structure will be stripped off in email addresses.'),
  p('masquerade_exceptions', '', 'list', 'Optional list of user names that are not subjected to address masquerading, even when their addresses match $masquerade_domains.'),
  p('master_service_disable', '', 'str', 'Selectively disable master(8) listener ports by service type or by service name and type.'),
  p('max_idle', '100s', 'time', 's', 'The maximum amount of time that an idle Postfix daemon process waits for an incoming connection before terminating voluntarily.'),
  p('max_use', '100', 'int', 'The maximal number of incoming connections that a Postfix daemon process will service before terminating voluntarily.'),
  p('maximal_backoff_time', '4000s', 'time', 's', 'The maximal time between attempts to deliver a deferred message.'),
  p('maximal_queue_lifetime', '5d', 'time', 'd', 'Consider a message as undeliverable, when delivery fails with a temporary error, and the time in the queue has reached the maximal_queue_lifetime limit.'),
  p('message_drop_headers', 'bcc, content-length, resent-bcc, return-path', 'str', 'Names of message headers that the cleanup(8) daemon will remove after applying header_checks(5) and before invoking Milter applications.'),
  p('message_reject_characters', '', 'str', 'The set of characters that Postfix will reject in message content.'),
  p('message_size_limit', '10240000', 'size', 'The maximal size in bytes of a message, including envelope information.'),
  p('message_strip_characters', '', 'str', 'The set of characters that Postfix will remove from message content.'),
  p('meta_directory', '/etc/postfix', 'str', 'The location of non-executable files that are shared among multiple Postfix instances, such as postfix-files, dynamicmaps.cf, and the multi-instance...'),
  p('milter_command_timeout', '30s', 'time', 's', 'The time limit for sending an SMTP command to a Milter (mail filter) application, and for receiving the response.'),
  p('milter_connect_macros', 'j {daemon_name} {daemon_addr} v _', 'str', 'The macros that are sent to Milter (mail filter) applications after completion of an SMTP connection.'),
  p('milter_connect_timeout', '30s', 'time', 's', 'The time limit for connecting to a Milter (mail filter) application, and for negotiating protocol options.'),
  p('milter_content_timeout', '300s', 'time', 's', 'The time limit for sending message content to a Milter (mail filter) application, and for receiving the response.'),
  p('milter_data_macros', 'i', 'str', 'The macros that are sent to version 4 or higher Milter (mail filter) applications after the SMTP DATA command.'),
  p('milter_default_action', 'tempfail', 'str', 'The default action when a Milter (mail filter) response is unavailable (for example, bad Postfix configuration or Milter failure).'),
  p('milter_end_of_data_macros', 'i', 'str', 'The macros that are sent to Milter (mail filter) applications after the message end-of-data.'),
  p('milter_end_of_header_macros', 'i', 'str', 'The macros that are sent to Milter (mail filter) applications after the end of the message header.'),
  p('milter_header_checks', '', 'list', 'Optional lookup tables for content inspection of message headers that are produced by Milter applications.'),
  p('milter_helo_macros', '{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}', 'str', 'The macros that are sent to Milter (mail filter) applications after the SMTP HELO or EHLO command.'),
  p('milter_macro_daemon_name', '$myhostname', 'str', 'The {daemon_name} macro value for Milter (mail filter) applications.'),
  p('milter_macro_defaults', '', 'str', 'Optional list of name=value pairs that specify default values for arbitrary macros that Postfix may send to Milter applications.'),
  p('milter_macro_v', '$mail_name $mail_version', 'str', 'The {v} macro value for Milter (mail filter) applications.'),
  p('milter_mail_macros', 'i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}', 'str', 'The macros that are sent to Milter (mail filter) applications after the SMTP MAIL FROM command.'),
  p('milter_protocol', '6', 'int', 'The mail filter protocol version and optional protocol extensions for communication with a Milter application; prior to Postfix 2.6 the default protocol is 2.'),
  p('milter_rcpt_macros', 'i {rcpt_addr} {rcpt_host} {rcpt_mailer}', 'str', 'The macros that are sent to Milter (mail filter) applications after the SMTP RCPT TO command.'),
  p('milter_unknown_command_macros', '', 'str', 'The macros that are sent to version 3 or higher Milter (mail filter) applications after an unknown SMTP command.'),
  p('mime_boundary_length_limit', '2048', 'int', 'The maximal length of MIME multipart boundary strings.'),
  p('mime_header_checks', '$header_checks', 'list', 'Optional lookup tables for content inspection of MIME related message headers, as described in the header_checks(5) manual page.'),
  p('mime_nesting_limit', '100', 'int', 'The maximal recursion level that the MIME processor will handle.'),
  p('minimal_backoff_time', '300s', 'time', 's', 'The minimal time between attempts to deliver a deferred message; prior to Postfix 2.4 the default value was 1000s.'),
  p('multi_instance_directories', '', 'str', 'An optional list of non-default Postfix configuration directories; these directories belong to additional Postfix instances that share the Postfix...'),
  p('multi_instance_enable', 'no', 'bool', 'Allow this Postfix instance to be started, stopped, etc., by a multi-instance manager.'),
  p('multi_instance_group', '', 'str', 'The optional instance group name of this Postfix instance.'),
  p('multi_instance_name', '', 'str', 'The optional instance name of this Postfix instance.'),
  p('multi_instance_wrapper', '', 'str', 'The pathname of a multi-instance manager command that the postfix(1) command invokes when the multi_instance_directories parameter value is non-empty.'),
  p('multi_recipient_bounce_reject_code', '550', 'int', 'The numerical Postfix SMTP server response code when a remote SMTP client request is blocked by the reject_multi_recipient_bounce restriction.'),
  p('mydestination', '$myhostname, localhost.$mydomain, localhost', 'list', 'The list of domains that are delivered via the $local_transport mail delivery transport.'),
  p('mydomain', '', 'str', 'The internet domain name of this mail system.'),
  p('myhostname', '', 'str', 'The internet hostname of this mail system.'),
  p('mynetworks', '', 'list', 'The list of "trusted" remote SMTP clients that have more privileges than "strangers".'),
  p('mynetworks_style', '${{$compatibility_level} <level {2} ? {subnet} : {host}}', 'str', 'The method to generate the default value for the mynetworks parameter.'),
  p('myorigin', '$myhostname', 'str', 'The domain name that locally-posted mail appears to come from, and that locally posted mail is delivered to.'),
  p('nested_header_checks', '$header_checks', 'list', 'Optional lookup tables for content inspection of non-MIME message headers in attached messages, as described in the header_checks(5) manual page.'),
  p('newaliases_path', '/usr/bin/newaliases', 'str', 'Sendmail compatibility feature that specifies the location of the newaliases(1) command.'),
  p('non_fqdn_reject_code', '504', 'int', 'The numerical Postfix SMTP server reply code when a client request is rejected by the reject_non_fqdn_helo_hostname, reject_non_fqdn_sender or...'),
  p('non_smtpd_milters', '', 'str', 'A list of Milter (mail filter) applications for new mail that does not arrive via the Postfix smtpd(8) server.'),
  p('notify_classes', 'resource, software', 'list', 'The list of error classes that are reported to the postmaster.'),
  p('openssl_path', 'openssl', 'str', 'The location of the OpenSSL command line program openssl(1).'),
  p('owner_request_special', 'yes', 'bool', 'Enable special treatment for owner-listname entries in the aliases(5) file, and don\'t split owner-listname and listname-request address localparts when the...'),
  p('parent_domain_matches_subdomains', 'debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps', 'str', 'A list of Postfix features where the pattern "example.com" also matches subdomains of example.com, instead of requiring an explicit ".example.com" pattern.'),
  p('permit_mx_backup_networks', '', 'list', 'Restrict the use of the permit_mx_backup SMTP access feature to only domains whose primary MX hosts match the listed networks.'),
  p('pickup_service_name', 'pickup', 'str', 'The name of the pickup(8) service.'),
  p('pipe_delivery_status_filter', '$default_delivery_status_filter', 'str', 'Optional filter for the pipe(8) delivery agent to change the delivery status code or explanatory text of successful or unsuccessful deliveries.'),
  p('plaintext_reject_code', '450', 'int', 'The numerical Postfix SMTP server response code when a request is rejected by the reject_plaintext_session restriction.'),
  p('postlog_service_name', 'postlog', 'str', 'The name of the postlogd(8) service entry in master.cf.'),
  p('postlogd_watchdog_timeout', '10s', 'time', 's', 'How much time a postlogd(8) process may take to process a request before it is terminated by a built-in watchdog timer.'),
  p('postmulti_control_commands', 'reload flush', 'str', 'The postfix(1) commands that the postmulti(1) instance manager treats as "control" commands, that operate on running instances.'),
  p('postmulti_start_commands', 'start', 'str', 'The postfix(1) commands that the postmulti(1) instance manager treats as "start" commands.'),
  p('postmulti_stop_commands', 'stop abort drain quick-stop', 'str', 'The postfix(1) commands that the postmulti(1) instance manager treats as "stop" commands.'),
  p('postscreen_access_list', 'permit_mynetworks', 'list', 'Permanent allow/denylist for remote SMTP client IP addresses.'),
  p('postscreen_allowlist_interfaces', '${postscreen_whitelist_interfaces?{$postscreen_whitelist_interfaces}:{static:all}}', 'list', 'A list of local postscreen(8) server IP addresses where a non-allowlisted remote SMTP client can obtain postscreen(8)\'s temporary allowlist status.'),
  p('postscreen_bare_newline_action', 'ignore', 'str', 'The action that postscreen(8) takes when a remote SMTP client sends a bare newline character, that is, a newline not preceded by carriage return.'),
  p('postscreen_bare_newline_enable', 'no', 'bool', 'Enable "bare newline" SMTP protocol tests in the postscreen(8) server.'),
  p('postscreen_bare_newline_ttl', '30d', 'time', 'd', 'The amount of time that postscreen(8) will use the result from a successful "bare newline" SMTP protocol test.'),
  p('postscreen_cache_cleanup_interval', '12h', 'time', 'h', 'The amount of time between postscreen(8) cache cleanup runs.'),
  p('postscreen_cache_map', 'btree:$data_directory/postscreen_cache', 'str', 'Persistent storage for the postscreen(8) server decisions.'),
  p('postscreen_cache_retention_time', '7d', 'time', 'd', 'The amount of time that postscreen(8) will cache an expired temporary allowlist entry before it is removed.'),
  p('postscreen_client_connection_count_limit', '$smtpd_client_connection_count_limit', 'int', 'How many simultaneous connections any remote SMTP client is allowed to have with the postscreen(8) daemon.'),
  p('postscreen_command_count_limit', '20', 'int', 'The limit on the total number of commands per SMTP session for postscreen(8)\'s built-in SMTP protocol engine.'),
  p('postscreen_command_filter', '', 'str', 'A mechanism to transform commands from remote SMTP clients.'),
  p('postscreen_command_time_limit', '${stress?{10}:{300}}s', 'time', 's', 'The time limit to read an entire command line with postscreen(8)\'s built-in SMTP protocol engine.'),
  p('postscreen_denylist_action', '${postscreen_blacklist_action?{$postscreen_blacklist_action}:{ignore}}', 'str', 'The action that postscreen(8) takes when a remote SMTP client is permanently denylisted with the postscreen_access_list parameter.'),
  p('postscreen_disable_vrfy_command', '$disable_vrfy_command', 'bool', 'Disable the SMTP VRFY command in the postscreen(8) daemon.'),
  p('postscreen_discard_ehlo_keyword_address_maps', '$smtpd_discard_ehlo_keyword_address_maps', 'list', 'Lookup tables, indexed by the remote SMTP client address, with case insensitive lists of EHLO keywords (pipelining, starttls, auth, etc.) that the...'),
  p('postscreen_discard_ehlo_keywords', '$smtpd_discard_ehlo_keywords', 'str', 'A case insensitive list of EHLO keywords (pipelining, starttls, auth, etc.) that the postscreen(8) server will not send in the EHLO response to a remote...'),
  p('postscreen_dnsbl_action', 'ignore', 'str', 'The action that postscreen(8) takes when a remote SMTP client\'s combined DNSBL score is equal to or greater than a threshold (as defined with the...'),
  p('postscreen_dnsbl_allowlist_threshold', '${postscreen_dnsbl_whitelist_threshold?{$postscreen_dnsbl_whitelist_threshold}:{0}}', 'str', 'Allow a remote SMTP client to skip "before" and "after 220 greeting" protocol tests, based on its combined DNSBL score as defined with the...'),
  p('postscreen_dnsbl_max_ttl', '${postscreen_dnsbl_ttl?{$postscreen_dnsbl_ttl}:{1}}h', 'time', 'h', 'The maximum amount of time that postscreen(8) will use the result from a successful DNS-based reputation test before a client IP address is required to pass...'),
  p('postscreen_dnsbl_min_ttl', '60s', 'time', 's', 'The minimum amount of time that postscreen(8) will use the result from a successful DNS-based reputation test before a client IP address is required to pass...'),
  p('postscreen_dnsbl_reply_map', '', 'str', 'A mapping from an actual DNSBL domain name which includes a secret password, to the DNSBL domain name that postscreen will reply with when it rejects mail.'),
  p('postscreen_dnsbl_sites', '', 'list', 'Optional list of DNS allow/denylist domains, filters and weight factors.'),
  p('postscreen_dnsbl_threshold', '1', 'int', 'The inclusive lower bound for blocking a remote SMTP client, based on its combined DNSBL score as defined with the postscreen_dnsbl_sites parameter.'),
  p('postscreen_dnsbl_timeout', '10s', 'time', 's', 'The time limit for DNSBL or DNSWL lookups.'),
  p('postscreen_enforce_tls', '$smtpd_enforce_tls', 'bool', 'Mandatory TLS: announce STARTTLS support to remote SMTP clients, and require that clients use TLS encryption.'),
  p('postscreen_expansion_filter', '$smtpd_expansion_filter', 'str', 'List of characters that are permitted in postscreen_reject_footer attribute expansions.'),
  p('postscreen_forbidden_commands', '$smtpd_forbidden_commands', 'str', 'List of commands that the postscreen(8) server considers in violation of the SMTP protocol.'),
  p('postscreen_greet_action', 'ignore', 'str', 'The action that postscreen(8) takes when a remote SMTP client speaks before its turn within the time specified with the postscreen_greet_wait parameter.'),
  p('postscreen_greet_banner', '$smtpd_banner', 'str', 'The text in the optional "220-text..." server response that postscreen(8) sends ahead of the real Postfix SMTP server\'s "220 text..." response, in an...'),
  p('postscreen_greet_ttl', '1d', 'time', 'd', 'The amount of time that postscreen(8) will use the result from a successful PREGREET test.'),
  p('postscreen_greet_wait', '${stress?{2}:{6}}s', 'time', 's', 'The amount of time that postscreen(8) will wait for an SMTP client to send a command before its turn, and for DNS blocklist lookup results to arrive...'),
  p('postscreen_helo_required', '$smtpd_helo_required', 'bool', 'Require that a remote SMTP client sends HELO or EHLO before commencing a MAIL transaction.'),
  p('postscreen_non_smtp_command_action', 'drop', 'str', 'The action that postscreen(8) takes when a remote SMTP client sends non-SMTP commands as specified with the postscreen_forbidden_commands parameter.'),
  p('postscreen_non_smtp_command_enable', 'no', 'bool', 'Enable "non-SMTP command" tests in the postscreen(8) server.'),
  p('postscreen_non_smtp_command_ttl', '30d', 'time', 'd', 'The amount of time that postscreen(8) will use the result from a successful "non_smtp_command" SMTP protocol test.'),
  p('postscreen_pipelining_action', 'enforce', 'str', 'The action that postscreen(8) takes when a remote SMTP client sends multiple commands instead of sending one command and waiting for the server to respond.'),
  p('postscreen_pipelining_enable', 'no', 'bool', 'Enable "pipelining" SMTP protocol tests in the postscreen(8) server.'),
  p('postscreen_pipelining_ttl', '30d', 'time', 'd', 'The amount of time that postscreen(8) will use the result from a successful "pipelining" SMTP protocol test.'),
  p('postscreen_post_queue_limit', '$default_process_limit', 'int', 'The number of clients that can be waiting for service from a real Postfix SMTP server process.'),
  p('postscreen_pre_queue_limit', '$default_process_limit', 'int', 'The number of non-allowlisted clients that can be waiting for a decision whether they will receive service from a real Postfix SMTP server process.'),
  p('postscreen_reject_footer', '$smtpd_reject_footer', 'str', 'Optional information that is appended after a 4XX or 5XX postscreen(8) server response.'),
  p('postscreen_reject_footer_maps', '$smtpd_reject_footer_maps', 'list', 'Optional lookup table for information that is appended after a 4XX or 5XX postscreen(8) server response.'),
  p('postscreen_tls_security_level', '$smtpd_tls_security_level', 'str', 'The SMTP TLS security level for the postscreen(8) server; when a non-empty value is specified, this overrides the obsolete parameters postscreen_use_tls and...'),
  p('postscreen_upstream_proxy_protocol', '', 'str', 'The name of the proxy protocol used by an optional before-postscreen proxy agent.'),
  p('postscreen_upstream_proxy_timeout', '5s', 'time', 's', 'The time limit for the proxy protocol specified with the postscreen_upstream_proxy_protocol parameter.'),
  p('postscreen_use_tls', '$smtpd_use_tls', 'bool', 'Opportunistic TLS: announce STARTTLS support to remote SMTP clients, but do not require that clients use TLS encryption.'),
  p('postscreen_watchdog_timeout', '10s', 'time', 's', 'How much time a postscreen(8) process may take to respond to a remote SMTP client command or to perform a cache operation before it is terminated by a...'),
  p('prepend_delivered_header', 'command, file, forward', 'str', 'The message delivery contexts where the Postfix local(8) delivery agent prepends a Delivered-To: message header with the address that the mail was delivered to.'),
  p('process_id', '', 'int', ''),
  p('process_id_directory', 'pid', 'str', 'The location of Postfix PID files relative to $queue_directory.'),
  p('process_name', '', 'str', ''),
  p('propagate_unmatched_extensions', 'canonical, virtual', 'str', 'What address lookup tables copy an address extension from the lookup key to the lookup result.'),
  p('proxy_interfaces', '', 'list', 'The network interface addresses that this mail system receives mail on by way of a proxy or network address translation unit.'),
  p('proxy_read_maps', '$local_recipient_maps $mydestination $virtual_alias_maps $virtual_alias_domains $virtual_mailbox_maps $virtual_mailbox_domains $relay_recipient_maps $relay_domains $canonical_maps $sender_canonical_maps $recipient_canonical_maps $relocated_maps $transport_maps $mynetworks $smtpd_sender_login_maps $sender_bcc_maps $recipient_bcc_maps $smtp_generic_maps $lmtp_generic_maps $alias_maps $smtpd_client_restrictions $smtpd_helo_restrictions $smtpd_sender_restrictions $smtpd_relay_restrictions $smtpd_recipient_restrictions $address_verify_sender_dependent_default_transport_maps $address_verify_sender_dependent_relayhost_maps $address_verify_transport_maps $fallback_transport_maps $lmtp_discard_lhlo_keyword_address_maps $lmtp_pix_workaround_maps $lmtp_sasl_password_maps $lmtp_tls_policy_maps $mailbox_command_maps $mailbox_transport_maps $postscreen_discard_ehlo_keyword_address_maps $rbl_reply_maps $sender_dependent_default_transport_maps $sender_dependent_relayhost_maps $smtp_discard_ehlo_keyword_address_maps $smtp_pix_workaround_maps $smtp_sasl_password_maps $smtp_tls_policy_maps $smtpd_discard_ehlo_keyword_address_maps $smtpd_milter_maps $virtual_gid_maps $virtual_uid_maps $local_login_sender_maps $postscreen_reject_footer_maps $smtpd_reject_footer_maps $tls_server_sni_maps $tlsproxy_client_policy_maps $default_delivery_status_filter $lmtp_delivery_status_filter $lmtp_dns_reply_filter $lmtp_reply_filter $local_delivery_status_filter $pipe_delivery_status_filter $postscreen_command_filter $smtp_delivery_status_filter $smtp_dns_reply_filter $smtp_reply_filter $smtpd_command_filter $smtpd_dns_reply_filter $virtual_delivery_status_filter $body_checks $header_checks $lmtp_body_checks $lmtp_header_checks $lmtp_mime_header_checks $lmtp_nested_header_checks $milter_header_checks $mime_header_checks $nested_header_checks $smtp_body_checks $smtp_header_checks $smtp_mime_header_checks $smtp_nested_header_checks', 'list', 'The lookup tables that the proxymap(8) server is allowed to access for the read-only service.'),
  p('proxy_write_maps', '$smtp_sasl_auth_cache_name $lmtp_sasl_auth_cache_name $address_verify_map $postscreen_cache_map', 'list', 'The lookup tables that the proxymap(8) server is allowed to access for the read-write service.'),
  p('proxymap_service_name', 'proxymap', 'str', 'The name of the proxymap read-only table lookup service.'),
  p('proxywrite_service_name', 'proxywrite', 'str', 'The name of the proxywrite read-write table lookup service.'),
  p('qmgr_clog_warn_time', '300s', 'time', 's', 'The minimal delay between warnings that a specific destination is clogging up the Postfix active queue.'),
  p('qmgr_daemon_timeout', '1000s', 'time', 's', 'How much time a Postfix queue manager process may take to handle a request before it is terminated by a built-in watchdog timer.'),
  p('qmgr_fudge_factor', '100', 'int', 'Obsolete feature: the percentage of delivery resources that a busy mail system will use up for delivery of a large mailing list message.'),
  p('qmgr_ipc_timeout', '60s', 'time', 's', 'The time limit for the queue manager to send or receive information over an internal communication channel.'),
  p('qmgr_message_active_limit', '20000', 'int', 'The maximal number of messages in the active queue.'),
  p('qmgr_message_recipient_limit', '20000', 'int', 'The maximal number of recipients held in memory by the Postfix queue manager, and the maximal size of the short-term, in-memory "dead" destination status cache.'),
  p('qmgr_message_recipient_minimum', '10', 'int', 'The minimal number of in-memory recipients for any message.'),
  p('qmqpd_authorized_clients', '', 'str', 'What remote QMQP clients are allowed to connect to the Postfix QMQP server port.'),
  p('qmqpd_client_port_logging', 'no', 'bool', 'Enable logging of the remote QMQP client port in addition to the hostname and IP address.'),
  p('qmqpd_error_delay', '1s', 'time', 's', 'How long the Postfix QMQP server will pause before sending a negative reply to the remote QMQP client.'),
  p('qmqpd_timeout', '300s', 'time', 's', 'The time limit for sending or receiving information over the network.'),
  p('queue_directory', '/var/spool/postfix', 'str', 'The location of the Postfix top-level queue directory.'),
  p('queue_file_attribute_count_limit', '100', 'int', 'The maximal number of (name=value) attributes that may be stored in a Postfix queue file.'),
  p('queue_minfree', '0', 'size', 'The minimal amount of free space in bytes in the queue file system that is needed to receive mail.'),
  p('queue_run_delay', '300s', 'time', 's', 'The time between deferred queue scans by the queue manager; prior to Postfix 2.4 the default value was 1000s.'),
  p('queue_service_name', 'qmgr', 'str', 'The name of the qmgr(8) service.'),
  p('rbl_reply_maps', '', 'list', 'Optional lookup tables with RBL response templates.'),
  p('readme_directory', '/usr/share/doc/postfix', 'str', 'The location of Postfix README files that describe how to build, configure or operate a specific Postfix subsystem or feature.'),
  p('receive_override_options', '', 'list', 'Enable or disable recipient validation, built-in content filtering, or address mapping.'),
  p('recipient_bcc_maps', '', 'list', 'Optional BCC (blind carbon-copy) address lookup tables, indexed by recipient address.'),
  p('recipient_canonical_classes', 'envelope_recipient, header_recipient', 'list', 'What addresses are subject to recipient_canonical_maps address mapping.'),
  p('recipient_canonical_maps', '', 'list', 'Optional address mapping lookup tables for envelope and header recipient addresses.'),
  p('recipient_delimiter', '', 'str', 'The set of characters that can separate an email address localpart, user name, or a .forward file name from its extension.'),
  p('reject_code', '554', 'int', 'The numerical Postfix SMTP server response code when a remote SMTP client request is rejected by the "reject" restriction.'),
  p('reject_tempfail_action', 'defer_if_permit', 'str', 'The Postfix SMTP server\'s action when a reject-type restriction fails due to a temporary error condition.'),
  p('relay_clientcerts', '', 'str', 'List of tables with remote SMTP client-certificate fingerprints or public key fingerprints (Postfix 2.9 and later) for which the Postfix SMTP server will...'),
  p('relay_domains', '${{$compatibility_level} <level {2} ? {$mydestination} : {}}', 'list', 'What destination domains (and subdomains thereof) this system will relay mail to.'),
  p('relay_domains_reject_code', '554', 'int', 'The numerical Postfix SMTP server response code when a client request is rejected by the reject_unauth_destination recipient restriction.'),
  p('relay_recipient_maps', '', 'list', 'Optional lookup tables with all valid addresses in the domains that match $relay_domains.'),
  p('relay_transport', 'relay', 'str', 'The default mail delivery transport and next-hop destination for remote delivery to domains listed with $relay_domains.'),
  p('relayhost', '', 'str', 'The next-hop destination(s) for non-local mail; overrides non-local domains in recipient addresses.'),
  p('relocated_maps', '', 'list', 'Optional lookup tables with new contact information for users or domains that no longer exist.'),
  p('remote_header_rewrite_domain', '', 'str', 'Don\'t rewrite message headers from remote clients at all when this parameter is empty; otherwise, rewrite message headers and append the specified domain...'),
  p('require_home_directory', 'no', 'bool', 'Require that a local(8) recipient\'s home directory exists before mail delivery is attempted.'),
  p('reset_owner_alias', 'no', 'bool', 'Reset the local(8) delivery agent\'s idea of the owner-alias attribute, when delivering mail to a child alias that does not have its own owner alias.'),
  p('resolve_dequoted_address', 'yes', 'bool', 'Resolve a recipient address safely instead of correctly, by looking inside quotes.'),
  p('resolve_null_domain', 'no', 'bool', 'Resolve an address that ends in the "@" null domain as if the local hostname were specified, instead of rejecting the address as invalid.'),
  p('resolve_numeric_domain', 'no', 'bool', 'Resolve "user@ipaddress" as "user@[ipaddress]", instead of rejecting the address as invalid.'),
  p('respectful_logging', '${{$compatibility_level} <level {3.6} ? {no} : {yes}}', 'bool', 'Avoid logging that implies white is better than black.'),
  p('rewrite_service_name', 'rewrite', 'str', 'The name of the address rewriting service.'),
  p('sample_directory', '/etc/postfix', 'str', 'The name of the directory with example Postfix configuration files.'),
  p('send_cyrus_sasl_authzid', 'no', 'bool', 'When authenticating to a remote SMTP or LMTP server with the default setting "no", send no SASL authoriZation ID (authzid); send only the SASL...'),
  p('sender_bcc_maps', '', 'list', 'Optional BCC (blind carbon-copy) address lookup tables, indexed by sender address.'),
  p('sender_canonical_classes', 'envelope_sender, header_sender', 'list', 'What addresses are subject to sender_canonical_maps address mapping.'),
  p('sender_canonical_maps', '', 'list', 'Optional address mapping lookup tables for envelope and header sender addresses.'),
  p('sender_dependent_default_transport_maps', '', 'list', 'A sender-dependent override for the global default_transport parameter setting.'),
  p('sender_dependent_relayhost_maps', '', 'list', 'A sender-dependent override for the global relayhost parameter setting.'),
  p('sendmail_fix_line_endings', 'always', 'str', 'Controls how the Postfix sendmail command converts email message line endings from <CR><LF> into UNIX format (<LF>).'),
  p('sendmail_path', '/usr/sbin/sendmail', 'str', 'A Sendmail compatibility feature that specifies the location of the Postfix sendmail(1) command.'),
  p('service_name', '', 'str', ''),
  p('service_throttle_time', '60s', 'time', 's', 'How long the Postfix master(8) waits before forking a server that appears to be malfunctioning.'),
  p('setgid_group', 'postdrop', 'str', 'The group ownership of set-gid Postfix commands and of group-writable Postfix directories.'),
  p('shlib_directory', '/usr/lib/postfix', 'str', 'The location of Postfix dynamically-linked libraries (libpostfix-*.so), and the default location of Postfix database plugins (postfix-*.so) that have a...'),
  p('show_user_unknown_table_name', 'yes', 'bool', 'Display the name of the recipient table in the "User unknown" responses.'),
  p('showq_service_name', 'showq', 'str', 'The name of the showq(8) service.'),
  p('smtp_address_preference', 'any', 'str', 'The address type ("ipv6", "ipv4" or "any") that the Postfix SMTP client will try first, when a destination has IPv6 and IPv4 addresses with equal MX preference.'),
  p('smtp_address_verify_target', 'rcpt', 'str', 'In the context of email address verification, the SMTP protocol stage that determines whether an email address is deliverable.'),
  p('smtp_always_send_ehlo', 'yes', 'bool', 'Always send EHLO at the start of an SMTP session.'),
  p('smtp_balance_inet_protocols', 'yes', 'bool', 'When a remote destination resolves to a combination of IPv4 and IPv6 addresses, ensure that the Postfix SMTP client can try both address types before it...'),
  p('smtp_bind_address', '', 'str', 'An optional numerical network address that the Postfix SMTP client should bind to when making an IPv4 connection.'),
  p('smtp_bind_address6', '', 'str', 'An optional numerical network address that the Postfix SMTP client should bind to when making an IPv6 connection.'),
  p('smtp_bind_address_enforce', 'no', 'bool', 'Defer delivery when the Postfix SMTP client cannot apply the smtp_bind_address or smtp_bind_address6 setting.'),
  p('smtp_body_checks', '', 'list', 'Restricted body_checks(5) tables for the Postfix SMTP client.'),
  p('smtp_cname_overrides_servername', 'no', 'bool', 'When the remote SMTP servername is a DNS CNAME, replace the servername with the result from CNAME expansion for the purpose of logging, SASL password...'),
  p('smtp_connect_timeout', '30s', 'time', 's', 'The Postfix SMTP client time limit for completing a TCP connection, or zero (use the operating system built-in time limit).'),
  p('smtp_connection_cache_destinations', '', 'str', 'Permanently enable SMTP connection caching for the specified destinations.'),
  p('smtp_connection_cache_on_demand', 'yes', 'bool', 'Temporarily enable SMTP connection caching while a destination has a high volume of mail in the active queue.'),
  p('smtp_connection_cache_time_limit', '2s', 'time', 's', 'When SMTP connection caching is enabled, the amount of time that an unused SMTP client socket is kept open before it is closed.'),
  p('smtp_connection_reuse_count_limit', '0', 'int', 'When SMTP connection caching is enabled, the number of times that an SMTP session may be reused before it is closed, or zero (no limit).'),
  p('smtp_connection_reuse_time_limit', '300s', 'time', 's', 'The amount of time during which Postfix will use an SMTP connection repeatedly.'),
  p('smtp_data_done_timeout', '600s', 'time', 's', 'The Postfix SMTP client time limit for sending the SMTP ".", and for receiving the remote SMTP server response.'),
  p('smtp_data_init_timeout', '120s', 'time', 's', 'The Postfix SMTP client time limit for sending the SMTP DATA command, and for receiving the remote SMTP server response.'),
  p('smtp_data_xfer_timeout', '180s', 'time', 's', 'The Postfix SMTP client time limit for sending the SMTP message content.'),
  p('smtp_defer_if_no_mx_address_found', 'no', 'bool', 'Defer mail delivery when no MX record resolves to an IP address.'),
  p('smtp_delivery_status_filter', '$default_delivery_status_filter', 'str', 'Optional filter for the smtp(8) delivery agent to change the delivery status code or explanatory text of successful or unsuccessful deliveries.'),
  p('smtp_discard_ehlo_keyword_address_maps', '', 'list', 'Lookup tables, indexed by the remote SMTP server address, with case insensitive lists of EHLO keywords (pipelining, starttls, auth, etc.) that the Postfix...'),
  p('smtp_discard_ehlo_keywords', '', 'str', 'A case insensitive list of EHLO keywords (pipelining, starttls, auth, etc.) that the Postfix SMTP client will ignore in the EHLO response from a remote SMTP...'),
  p('smtp_dns_reply_filter', '', 'list', 'Optional filter for Postfix SMTP client DNS lookup results.'),
  p('smtp_dns_resolver_options', '', 'list', 'DNS Resolver options for the Postfix SMTP client.'),
  p('smtp_dns_support_level', '', 'str', 'Level of DNS support in the Postfix SMTP client.'),
  p('smtp_enforce_tls', 'no', 'bool', 'Enforcement mode: require that remote SMTP servers use TLS encryption, and never send mail in the clear.'),
  p('smtp_fallback_relay', '$fallback_relay', 'str', 'Optional list of relay hosts for SMTP destinations that can\'t be found or that are unreachable.'),
  p('smtp_generic_maps', '', 'list', 'Optional lookup tables that perform address rewriting in the Postfix SMTP client, typically to transform a locally valid address into a globally valid...'),
  p('smtp_header_checks', '', 'list', 'Restricted header_checks(5) tables for the Postfix SMTP client.'),
  p('smtp_helo_name', '$myhostname', 'str', 'The hostname to send in the SMTP HELO or EHLO command.'),
  p('smtp_helo_timeout', '300s', 'time', 's', 'The Postfix SMTP client time limit for sending the HELO or EHLO command, and for receiving the initial remote SMTP server response.'),
  p('smtp_host_lookup', 'dns', 'list', 'What mechanisms the Postfix SMTP client uses to look up a host\'s IP address.'),
  p('smtp_line_length_limit', '998', 'int', 'The maximal length of message header and body lines that Postfix will send via SMTP.'),
  p('smtp_mail_timeout', '300s', 'time', 's', 'The Postfix SMTP client time limit for sending the MAIL FROM command, and for receiving the remote SMTP server response.'),
  p('smtp_mime_header_checks', '', 'list', 'Restricted mime_header_checks(5) tables for the Postfix SMTP client.'),
  p('smtp_min_data_rate', '500', 'int', 'The minimum plaintext data transfer rate in bytes/second for DATA requests, when deadlines are enabled with smtp_per_request_deadline.'),
  p('smtp_mx_address_limit', '5', 'int', 'The maximal number of MX (mail exchanger) IP addresses that can result from Postfix SMTP client mail exchanger lookups, or zero (no limit).'),
  p('smtp_mx_session_limit', '2', 'int', 'The maximal number of SMTP sessions per delivery request before the Postfix SMTP client gives up or delivers to a fall-back relay host, or zero (no limit).'),
  p('smtp_nested_header_checks', '', 'list', 'Restricted nested_header_checks(5) tables for the Postfix SMTP client.'),
  p('smtp_never_send_ehlo', 'no', 'bool', 'Never send EHLO at the start of an SMTP session.'),
  p('smtp_per_request_deadline', '${smtp_per_record_deadline?{$smtp_per_record_deadline}:{no}}', 'str', 'Change the behavior of the smtp_*_timeout time limits, from a time limit per plaintext or TLS read or write call, to a combined time limit for sending a...'),
  p('smtp_pix_workaround_delay_time', '10s', 'time', 's', 'How long the Postfix SMTP client pauses before sending ".<CR><LF>" in order to work around the PIX firewall "<CR><LF>.<CR><LF>" bug.'),
  p('smtp_pix_workaround_maps', '', 'list', 'Lookup tables, indexed by the remote SMTP server address, with per-destination workarounds for CISCO PIX firewall bugs.'),
  p('smtp_pix_workaround_threshold_time', '500s', 'time', 's', 'How long a message must be queued before the Postfix SMTP client turns on the PIX firewall "<CR><LF>.<CR><LF>" bug workaround for delivery through firewalls...'),
  p('smtp_pix_workarounds', 'disable_esmtp,delay_dotcrlf', 'str', 'A list that specifies zero or more workarounds for CISCO PIX firewall bugs.'),
  p('smtp_quit_timeout', '300s', 'time', 's', 'The Postfix SMTP client time limit for sending the QUIT command, and for receiving the remote SMTP server response.'),
  p('smtp_quote_rfc821_envelope', 'yes', 'bool', 'Quote addresses in Postfix SMTP client MAIL FROM and RCPT TO commands as required by RFC 5321.'),
  p('smtp_randomize_addresses', 'yes', 'bool', 'Randomize the order of equal-preference MX host addresses.'),
  p('smtp_rcpt_timeout', '300s', 'time', 's', 'The Postfix SMTP client time limit for sending the SMTP RCPT TO command, and for receiving the remote SMTP server response.'),
  p('smtp_reply_filter', '', 'list', 'A mechanism to transform replies from remote SMTP servers one line at a time.'),
  p('smtp_rset_timeout', '20s', 'time', 's', 'The Postfix SMTP client time limit for sending the RSET command, and for receiving the remote SMTP server response.'),
  p('smtp_sasl_auth_cache_name', '', 'str', 'An optional table to prevent repeated SASL authentication failures with the same remote SMTP server hostname, username and password.'),
  p('smtp_sasl_auth_cache_time', '90d', 'time', 'd', 'The maximal age of an smtp_sasl_auth_cache_name entry before it is removed.'),
  p('smtp_sasl_auth_enable', 'no', 'bool', 'Enable SASL authentication in the Postfix SMTP client.'),
  p('smtp_sasl_auth_soft_bounce', 'yes', 'bool', 'When a remote SMTP server rejects a SASL authentication request with a 535 reply code, defer mail delivery instead of returning mail as undeliverable.'),
  p('smtp_sasl_mechanism_filter', '', 'list', 'If non-empty, a Postfix SMTP client filter for the remote SMTP server\'s list of offered SASL mechanisms.'),
  p('smtp_sasl_password_maps', '', 'list', 'Optional Postfix SMTP client lookup tables with one username:password entry per sender, remote hostname or next-hop domain.'),
  p('smtp_sasl_path', '', 'str', 'Implementation-specific information that the Postfix SMTP client passes through to the SASL plug-in implementation that is selected with smtp_sasl_type.'),
  p('smtp_sasl_security_options', 'noplaintext, noanonymous', 'list', 'Postfix SMTP client SASL security options; as of Postfix 2.3 the list of available features depends on the SASL client implementation that is selected with...'),
  p('smtp_sasl_tls_security_options', '$smtp_sasl_security_options', 'list', 'The SASL authentication security options that the Postfix SMTP client uses for TLS encrypted SMTP sessions.'),
  p('smtp_sasl_tls_verified_security_options', '$smtp_sasl_tls_security_options', 'list', 'The SASL authentication security options that the Postfix SMTP client uses for TLS encrypted SMTP sessions with a verified server certificate.'),
  p('smtp_sasl_type', 'cyrus', 'str', 'The SASL plug-in type that the Postfix SMTP client should use for authentication.'),
  p('smtp_send_dummy_mail_auth', 'no', 'bool', 'Whether or not to append the "AUTH=<>" option to the MAIL FROM command in SASL-authenticated SMTP sessions.'),
  p('smtp_send_xforward_command', 'no', 'bool', 'Send the non-standard XFORWARD command when the Postfix SMTP server EHLO response announces XFORWARD support.'),
  p('smtp_sender_dependent_authentication', 'no', 'bool', 'Enable sender-dependent authentication in the Postfix SMTP client; this is available only with SASL authentication, and disables SMTP connection caching to...'),
  p('smtp_skip_5xx_greeting', 'yes', 'bool', 'Skip remote SMTP servers that greet with a 5XX status code.'),
  p('smtp_skip_quit_response', 'yes', 'bool', 'Do not wait for the response to the SMTP QUIT command.'),
  p('smtp_starttls_timeout', '300s', 'time', 's', 'Time limit for Postfix SMTP client write and read operations during TLS startup and shutdown handshake procedures.'),
  p('smtp_tcp_port', 'smtp', 'str', 'The default TCP port that the Postfix SMTP client connects to.'),
  p('smtp_tls_CAfile', '', 'str', 'A file containing CA certificates of root CAs trusted to sign either remote SMTP server certificates or intermediate CA certificates.'),
  p('smtp_tls_CApath', '', 'str', 'Directory with PEM format Certification Authority certificates that the Postfix SMTP client uses to verify a remote SMTP server certificate.'),
  p('smtp_tls_block_early_mail_reply', 'no', 'bool', 'Try to detect a mail hijacking attack based on a TLS protocol vulnerability (CVE-2009-3555), where an attacker prepends malicious HELO, MAIL, RCPT, DATA...'),
  p('smtp_tls_cert_file', '', 'str', 'File with the Postfix SMTP client RSA certificate in PEM format.'),
  p('smtp_tls_chain_files', '', 'str', 'List of one or more PEM files, each holding one or more private keys directly followed by a corresponding certificate chain.'),
  p('smtp_tls_ciphers', 'medium', 'str', 'The minimum TLS cipher grade that the Postfix SMTP client will use with opportunistic TLS encryption.'),
  p('smtp_tls_connection_reuse', 'no', 'bool', 'Try to make multiple deliveries per TLS-encrypted connection.'),
  p('smtp_tls_dane_insecure_mx_policy', '${{$smtp_tls_security_level} == {dane} ? {dane} : {may}}', 'str', 'The TLS policy for MX hosts with "secure" TLSA records when the nexthop destination security level is dane, but the MX record was found via an "insecure" MX...'),
  p('smtp_tls_dcert_file', '', 'str', 'File with the Postfix SMTP client DSA certificate in PEM format.'),
  p('smtp_tls_dkey_file', '$smtp_tls_dcert_file', 'str', 'File with the Postfix SMTP client DSA private key in PEM format.'),
  p('smtp_tls_eccert_file', '', 'str', 'File with the Postfix SMTP client ECDSA certificate in PEM format.'),
  p('smtp_tls_eckey_file', '$smtp_tls_eccert_file', 'str', 'File with the Postfix SMTP client ECDSA private key in PEM format.'),
  p('smtp_tls_enforce_peername', 'yes', 'bool', 'With mandatory TLS encryption, require that the remote SMTP server hostname matches the information in the remote SMTP server certificate.'),
  p('smtp_tls_exclude_ciphers', '', 'list', 'List of ciphers or cipher types to exclude from the Postfix SMTP client cipher list at all TLS security levels.'),
  p('smtp_tls_fingerprint_cert_match', '', 'str', 'List of acceptable remote SMTP server certificate fingerprints for the "fingerprint" TLS security level (smtp_tls_security_level = fingerprint).'),
  p('smtp_tls_fingerprint_digest', '${{$compatibility_level} <level {3.6} ? {md5} : {sha256}}', 'str', 'The message digest algorithm used to construct remote SMTP server certificate fingerprints.'),
  p('smtp_tls_force_insecure_host_tlsa_lookup', 'no', 'bool', 'Lookup the associated DANE TLSA RRset even when a hostname is not an alias and its address records lie in an unsigned zone.'),
  p('smtp_tls_key_file', '$smtp_tls_cert_file', 'str', 'File with the Postfix SMTP client RSA private key in PEM format.'),
  p('smtp_tls_loglevel', '0', 'int', 'Enable additional Postfix SMTP client logging of TLS activity.'),
  p('smtp_tls_mandatory_ciphers', 'medium', 'str', 'The minimum TLS cipher grade that the Postfix SMTP client will use with mandatory TLS encryption.'),
  p('smtp_tls_mandatory_exclude_ciphers', '', 'list', 'Additional list of ciphers or cipher types to exclude from the Postfix SMTP client cipher list at mandatory TLS security levels.'),
  p('smtp_tls_mandatory_protocols', '>=TLSv1', 'list', 'TLS protocols that the Postfix SMTP client will use with mandatory TLS encryption.'),
  p('smtp_tls_note_starttls_offer', 'no', 'bool', 'Log the hostname of a remote SMTP server that offers STARTTLS, when TLS is not already enabled for that server.'),
  p('smtp_tls_per_site', '', 'str', 'Optional lookup tables with the Postfix SMTP client TLS usage policy by next-hop destination and by remote SMTP server hostname.'),
  p('smtp_tls_policy_maps', '', 'list', 'Optional lookup tables with the Postfix SMTP client TLS security policy by next-hop destination; when a non-empty value is specified, this overrides the...'),
  p('smtp_tls_protocols', '>=TLSv1', 'list', 'TLS protocols that the Postfix SMTP client will use with opportunistic TLS encryption.'),
  p('smtp_tls_scert_verifydepth', '9', 'int', 'The verification depth for remote SMTP server certificates.'),
  p('smtp_tls_secure_cert_match', 'nexthop, dot-nexthop', 'str', 'How the Postfix SMTP client verifies the server certificate peername for the "secure" TLS security level.'),
  p('smtp_tls_security_level', '', 'str', 'The default SMTP TLS security level for the Postfix SMTP client.'),
  p('smtp_tls_servername', '', 'str', 'Optional name to send to the remote SMTP server in the TLS Server Name Indication (SNI) extension.'),
  p('smtp_tls_session_cache_database', '', 'str', 'Name of the file containing the optional Postfix SMTP client TLS session cache.'),
  p('smtp_tls_session_cache_timeout', '3600s', 'time', 's', 'The expiration time of Postfix SMTP client TLS session cache information.'),
  p('smtp_tls_trust_anchor_file', '', 'str', 'Zero or more PEM-format files with trust-anchor certificates and/or public keys.'),
  p('smtp_tls_verify_cert_match', 'hostname', 'str', 'How the Postfix SMTP client verifies the server certificate peername for the "verify" TLS security level.'),
  p('smtp_tls_wrappermode', 'no', 'bool', 'Request that the Postfix SMTP client connects using the SUBMISSIONS/SMTPS protocol instead of using the STARTTLS command.'),
  p('smtp_use_tls', 'no', 'bool', 'Opportunistic mode: use TLS when a remote SMTP server announces STARTTLS support, otherwise send the mail in the clear.'),
  p('smtp_xforward_timeout', '300s', 'time', 's', 'The Postfix SMTP client time limit for sending the XFORWARD command, and for receiving the remote SMTP server response.'),
  p('smtpd_authorized_verp_clients', '$authorized_verp_clients', 'str', 'What remote SMTP clients are allowed to specify the XVERP command.'),
  p('smtpd_authorized_xclient_hosts', '', 'str', 'What remote SMTP clients are allowed to use the XCLIENT feature.'),
  p('smtpd_authorized_xforward_hosts', '', 'str', 'What remote SMTP clients are allowed to use the XFORWARD feature.'),
  p('smtpd_banner', '$myhostname ESMTP $mail_name', 'str', 'The text that follows the 220 status code in the SMTP greeting banner.'),
  p('smtpd_client_auth_rate_limit', '0', 'int', 'The maximal number of AUTH commands that any client is allowed to send to this service per time unit, regardless of whether or not Postfix actually accepts...'),
  p('smtpd_client_connection_count_limit', '50', 'int', 'How many simultaneous connections any client is allowed to make to this service.'),
  p('smtpd_client_connection_rate_limit', '0', 'int', 'The maximal number of connection attempts any client is allowed to make to this service per time unit.'),
  p('smtpd_client_event_limit_exceptions', '${smtpd_client_connection_limit_exceptions:$mynetworks}', 'list', 'Clients that are excluded from smtpd_client_*_count/rate_limit restrictions.'),
  p('smtpd_client_message_rate_limit', '0', 'int', 'The maximal number of message delivery requests that any client is allowed to make to this service per time unit, regardless of whether or not Postfix...'),
  p('smtpd_client_new_tls_session_rate_limit', '0', 'int', 'The maximal number of new (i.e., uncached) TLS sessions that a remote SMTP client is allowed to negotiate with this service per time unit.'),
  p('smtpd_client_port_logging', 'no', 'bool', 'Enable logging of the remote SMTP client port in addition to the hostname and IP address.'),
  p('smtpd_client_recipient_rate_limit', '0', 'int', 'The maximal number of recipient addresses that any client is allowed to send to this service per time unit, regardless of whether or not Postfix actually...'),
  p('smtpd_client_restrictions', '', 'list', 'Optional restrictions that the Postfix SMTP server applies in the context of a client connection request.'),
  p('smtpd_command_filter', '', 'str', 'A mechanism to transform commands from remote SMTP clients.'),
  p('smtpd_data_restrictions', '', 'list', 'Optional access restrictions that the Postfix SMTP server applies in the context of the SMTP DATA command.'),
  p('smtpd_delay_open_until_valid_rcpt', 'yes', 'bool', 'Postpone the start of an SMTP mail transaction until a valid RCPT TO command is received.'),
  p('smtpd_delay_reject', 'yes', 'bool', 'Wait until the RCPT TO command before evaluating $smtpd_client_restrictions, $smtpd_helo_restrictions and $smtpd_sender_restrictions, or wait until the ETRN...'),
  p('smtpd_discard_ehlo_keyword_address_maps', '', 'list', 'Lookup tables, indexed by the remote SMTP client address, with case insensitive lists of EHLO keywords (pipelining, starttls, auth, etc.) that the Postfix...'),
  p('smtpd_discard_ehlo_keywords', '', 'str', 'A case insensitive list of EHLO keywords (pipelining, starttls, auth, etc.) that the Postfix SMTP server will not send in the EHLO response to a remote SMTP...'),
  p('smtpd_dns_reply_filter', '', 'list', 'Optional filter for Postfix SMTP server DNS lookup results.'),
  p('smtpd_end_of_data_restrictions', '', 'list', 'Optional access restrictions that the Postfix SMTP server applies in the context of the SMTP END-OF-DATA command.'),
  p('smtpd_enforce_tls', 'no', 'bool', 'Mandatory TLS: announce STARTTLS support to remote SMTP clients, and require that clients use TLS encryption.'),
  p('smtpd_error_sleep_time', '1s', 'time', 's', 'With Postfix version 2.1 and later: the SMTP server response delay after a client has made more than $smtpd_soft_error_limit errors, and fewer than...'),
  p('smtpd_etrn_restrictions', '', 'list', 'Optional restrictions that the Postfix SMTP server applies in the context of a client ETRN command.'),
  p('smtpd_expansion_filter', '\\t\\40!"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`abcdefghijklmnopqrstuvwxyz{|}~', 'str', 'What characters are allowed in $name expansions of RBL reply templates.'),
  p('smtpd_forbid_bare_newline', 'no', 'bool', 'Reject or restrict input lines from an SMTP client that end in <LF> instead of the standard <CR><LF>.'),
  p('smtpd_forbid_bare_newline_exclusions', '$mynetworks', 'str', 'Exclude the specified clients from smtpd_forbid_bare_newline enforcement.'),
  p('smtpd_forbid_bare_newline_reject_code', '550', 'int', 'The numerical Postfix SMTP server response code when rejecting a request with "smtpd_forbid_bare_newline = reject".'),
  p('smtpd_forbid_unauth_pipelining', 'no', 'bool', 'Disconnect remote SMTP clients that violate RFC 2920 (or 5321) command pipelining constraints.'),
  p('smtpd_forbidden_commands', 'CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}', 'str', 'List of commands that cause the Postfix SMTP server to immediately terminate the session with a 221 code.'),
  p('smtpd_hard_error_limit', '${stress?{1}:{20}}', 'int', 'The maximal number of errors a remote SMTP client is allowed to make without delivering mail.'),
  p('smtpd_helo_required', 'no', 'bool', 'Require that a remote SMTP client introduces itself with the HELO or EHLO command before sending the MAIL command or other commands that require EHLO...'),
  p('smtpd_helo_restrictions', '', 'list', 'Optional restrictions that the Postfix SMTP server applies in the context of a client HELO command.'),
  p('smtpd_history_flush_threshold', '100', 'int', 'The maximal number of lines in the Postfix SMTP server command history before it is flushed upon receipt of EHLO, RSET, or end of DATA.'),
  p('smtpd_junk_command_limit', '${stress?{1}:{100}}', 'int', 'The number of junk commands (NOOP, VRFY, ETRN or RSET) that a remote SMTP client can send before the Postfix SMTP server starts to increment the error...'),
  p('smtpd_log_access_permit_actions', '', 'str', 'Enable logging of the named "permit" actions in SMTP server access lists (by default, the SMTP server logs "reject" actions but not "permit" actions).'),
  p('smtpd_milter_maps', '', 'list', 'Lookup tables with Milter settings per remote SMTP client IP address.'),
  p('smtpd_milters', '', 'str', 'A list of Milter (mail filter) applications for new mail that arrives via the Postfix smtpd(8) server.'),
  p('smtpd_min_data_rate', '500', 'int', 'The minimum plaintext data transfer rate in bytes/second for DATA and BDAT requests, when deadlines are enabled with smtpd_per_request_deadline.'),
  p('smtpd_noop_commands', '', 'str', 'List of commands that the Postfix SMTP server replies to with "250 Ok", without doing any syntax checks and without changing state.'),
  p('smtpd_null_access_lookup_key', '<>', 'str', 'The lookup key to be used in SMTP access(5) tables instead of the null sender address.'),
  p('smtpd_peername_lookup', 'yes', 'bool', 'Attempt to look up the remote SMTP client hostname, and verify that the name matches the client IP address.'),
  p('smtpd_per_request_deadline', '${smtpd_per_record_deadline?{$smtpd_per_record_deadline}:{${stress?{yes}:{no}}}}', 'str', 'Change the behavior of the smtpd_timeout and smtpd_starttls_timeout time limits, from a time limit per plaintext or TLS read or write call, to a combined...'),
  p('smtpd_policy_service_default_action', '451 4.3.5 Server configuration problem', 'str', 'The default action when an SMTPD policy service request fails.'),
  p('smtpd_policy_service_max_idle', '300s', 'time', 's', 'The time after which an idle SMTPD policy service connection is closed.'),
  p('smtpd_policy_service_max_ttl', '1000s', 'time', 's', 'The time after which an active SMTPD policy service connection is closed.'),
  p('smtpd_policy_service_policy_context', '', 'str', 'Optional information that the Postfix SMTP server specifies in the "policy_context" attribute of a policy service request (originally, to share the same...'),
  p('smtpd_policy_service_request_limit', '0', 'int', 'The maximal number of requests per SMTPD policy service connection, or zero (no limit).'),
  p('smtpd_policy_service_retry_delay', '1s', 'time', 's', 'The delay between attempts to resend a failed SMTPD policy service request.'),
  p('smtpd_policy_service_timeout', '100s', 'time', 's', 'The time limit for connecting to, writing to, or receiving from a delegated SMTPD policy server.'),
  p('smtpd_policy_service_try_limit', '2', 'int', 'The maximal number of attempts to send an SMTPD policy service request before giving up.'),
  p('smtpd_proxy_ehlo', '$myhostname', 'str', 'How the Postfix SMTP server announces itself to the proxy filter.'),
  p('smtpd_proxy_filter', '', 'str', 'The hostname and TCP port of the mail filtering proxy server.'),
  p('smtpd_proxy_options', '', 'list', 'List of options that control how the Postfix SMTP server communicates with a before-queue content filter.'),
  p('smtpd_proxy_timeout', '100s', 'time', 's', 'The time limit for connecting to a proxy filter and for sending or receiving information.'),
  p('smtpd_recipient_limit', '1000', 'int', 'The maximal number of recipients that the Postfix SMTP server accepts per message delivery request.'),
  p('smtpd_recipient_overshoot_limit', '1000', 'int', 'The number of recipients that a remote SMTP client can send in excess of the limit specified with $smtpd_recipient_limit, before the Postfix SMTP server...'),
  p('smtpd_recipient_restrictions', '', 'list', 'Optional restrictions that the Postfix SMTP server applies in the context of a client RCPT TO command, after smtpd_relay_restrictions.'),
  p('smtpd_reject_footer', '', 'str', 'Optional information that is appended after each Postfix SMTP server 4XX or 5XX response.'),
  p('smtpd_reject_footer_maps', '', 'list', 'Lookup tables, indexed by the complete Postfix SMTP server 4xx or 5xx response, with reject footer templates.'),
  p('smtpd_reject_unlisted_recipient', 'yes', 'bool', 'Request that the Postfix SMTP server rejects mail for unknown recipient addresses, even when no explicit reject_unlisted_recipient access restriction is...'),
  p('smtpd_reject_unlisted_sender', 'no', 'bool', 'Request that the Postfix SMTP server rejects mail from unknown sender addresses, even when no explicit reject_unlisted_sender access restriction is specified.'),
  p('smtpd_relay_before_recipient_restrictions', '${{$compatibility_level} <level {3.6} ? {no} : {yes}}', 'bool', 'Evaluate smtpd_relay_restrictions before smtpd_recipient_restrictions.'),
  p('smtpd_relay_restrictions', '${{$compatibility_level} <level {1} ? {} : {permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination}}', 'list', 'Access restrictions for mail relay control that the Postfix SMTP server applies in the context of the RCPT TO command, before smtpd_recipient_restrictions.'),
  p('smtpd_restriction_classes', '', 'list', 'User-defined aliases for groups of access restrictions.'),
  p('smtpd_sasl_auth_enable', 'no', 'bool', 'Enable SASL authentication in the Postfix SMTP server.'),
  p('smtpd_sasl_authenticated_header', 'no', 'bool', 'Report the SASL authenticated user name in the smtpd(8) Received message header.'),
  p('smtpd_sasl_exceptions_networks', '', 'list', 'What remote SMTP clients the Postfix SMTP server will not offer AUTH support to.'),
  p('smtpd_sasl_local_domain', '', 'str', 'The name of the Postfix SMTP server\'s local SASL authentication realm.'),
  p('smtpd_sasl_mechanism_filter', '!external, static:rest', 'list', 'If non-empty, a filter for the SASL mechanism names that the Postfix SMTP server will announce in the EHLO response.'),
  p('smtpd_sasl_path', 'smtpd', 'str', 'Implementation-specific information that the Postfix SMTP server passes through to the SASL plug-in implementation that is selected with smtpd_sasl_type.'),
  p('smtpd_sasl_response_limit', '12288', 'int', 'The maximum length of a SASL client\'s response to a server challenge.'),
  p('smtpd_sasl_security_options', 'noanonymous', 'list', 'Postfix SMTP server SASL security options; as of Postfix 2.3 the list of available features depends on the SASL server implementation that is selected with...'),
  p('smtpd_sasl_service', 'smtp', 'str', 'The service name that is passed to the SASL plug-in that is selected with smtpd_sasl_type and smtpd_sasl_path.'),
  p('smtpd_sasl_tls_security_options', '$smtpd_sasl_security_options', 'list', 'The SASL authentication security options that the Postfix SMTP server uses for TLS encrypted SMTP sessions.'),
  p('smtpd_sasl_type', 'cyrus', 'str', 'The SASL plug-in type that the Postfix SMTP server should use for authentication.'),
  p('smtpd_sender_login_maps', '', 'list', 'Optional lookup table with the SASL login names that own the sender (MAIL FROM) addresses.'),
  p('smtpd_sender_restrictions', '', 'list', 'Optional restrictions that the Postfix SMTP server applies in the context of a client MAIL FROM command.'),
  p('smtpd_service_name', 'smtpd', 'str', 'The internal service that postscreen(8) hands off allowed connections to.'),
  p('smtpd_soft_error_limit', '10', 'int', 'The number of errors a remote SMTP client is allowed to make without delivering mail before the Postfix SMTP server slows down all its responses.'),
  p('smtpd_starttls_timeout', '${stress?{10}:{300}}s', 'time', 's', 'The time limit for Postfix SMTP server write and read operations during TLS startup and shutdown handshake procedures.'),
  p('smtpd_timeout', '${stress?{10}:{300}}s', 'time', 's', 'When the Postfix SMTP server wants to send an SMTP server response, how long the Postfix SMTP server will wait for an underlying network write operation to...'),
  p('smtpd_tls_CAfile', '', 'str', 'A file containing (PEM format) CA certificates of root CAs trusted to sign either remote SMTP client certificates or intermediate CA certificates.'),
  p('smtpd_tls_CApath', '', 'str', 'A directory containing (PEM format) CA certificates of root CAs trusted to sign either remote SMTP client certificates or intermediate CA certificates.'),
  p('smtpd_tls_always_issue_session_ids', 'yes', 'bool', 'Force the Postfix SMTP server to issue a TLS session id, even when TLS session caching is turned off (smtpd_tls_session_cache_database is empty).'),
  p('smtpd_tls_ask_ccert', 'no', 'bool', 'Ask a remote SMTP client for a client certificate.'),
  p('smtpd_tls_auth_only', 'no', 'bool', 'When TLS encryption is optional in the Postfix SMTP server, do not announce or accept SASL authentication over unencrypted connections.'),
  p('smtpd_tls_ccert_verifydepth', '9', 'int', 'The verification depth for remote SMTP client certificates.'),
  p('smtpd_tls_cert_file', '', 'str', 'File with the Postfix SMTP server RSA certificate in PEM format.'),
  p('smtpd_tls_chain_files', '', 'str', 'List of one or more PEM files, each holding one or more private keys directly followed by a corresponding certificate chain.'),
  p('smtpd_tls_ciphers', 'medium', 'str', 'The minimum TLS cipher grade that the Postfix SMTP server will use with opportunistic TLS encryption.'),
  p('smtpd_tls_dcert_file', '', 'str', 'File with the Postfix SMTP server DSA certificate in PEM format.'),
  p('smtpd_tls_dh1024_param_file', '', 'str', 'File with DH parameters that the Postfix SMTP server should use with non-export EDH ciphers.'),
  p('smtpd_tls_dh512_param_file', '', 'str', 'File with DH parameters that the Postfix SMTP server should use with export-grade EDH ciphers.'),
  p('smtpd_tls_dkey_file', '$smtpd_tls_dcert_file', 'str', 'File with the Postfix SMTP server DSA private key in PEM format.'),
  p('smtpd_tls_eccert_file', '', 'str', 'File with the Postfix SMTP server ECDSA certificate in PEM format.'),
  p('smtpd_tls_eckey_file', '$smtpd_tls_eccert_file', 'str', 'File with the Postfix SMTP server ECDSA private key in PEM format.'),
  p('smtpd_tls_eecdh_grade', 'auto', 'str', 'The Postfix SMTP server security grade for ephemeral elliptic-curve Diffie-Hellman (EECDH) key exchange.'),
  p('smtpd_tls_exclude_ciphers', '', 'list', 'List of ciphers or cipher types to exclude from the SMTP server cipher list at all TLS security levels.'),
  p('smtpd_tls_fingerprint_digest', '${{$compatibility_level} <level {3.6} ? {md5} : {sha256}}', 'str', 'The message digest algorithm to construct remote SMTP client-certificate fingerprints or public key fingerprints (Postfix 2.9 and later) for...'),
  p('smtpd_tls_key_file', '$smtpd_tls_cert_file', 'str', 'File with the Postfix SMTP server RSA private key in PEM format.'),
  p('smtpd_tls_loglevel', '0', 'int', 'Enable additional Postfix SMTP server logging of TLS activity.'),
  p('smtpd_tls_mandatory_ciphers', 'medium', 'str', 'The minimum TLS cipher grade that the Postfix SMTP server will use with mandatory TLS encryption.'),
  p('smtpd_tls_mandatory_exclude_ciphers', '', 'list', 'Additional list of ciphers or cipher types to exclude from the Postfix SMTP server cipher list at mandatory TLS security levels.'),
  p('smtpd_tls_mandatory_protocols', '>=TLSv1', 'list', 'TLS protocols accepted by the Postfix SMTP server with mandatory TLS encryption.'),
  p('smtpd_tls_protocols', '>=TLSv1', 'list', 'TLS protocols accepted by the Postfix SMTP server with opportunistic TLS encryption.'),
  p('smtpd_tls_received_header', 'no', 'bool', 'Request that the Postfix SMTP server produces Received: message headers that include information about the protocol and cipher used, as well as the remote...'),
  p('smtpd_tls_req_ccert', 'no', 'bool', 'With mandatory TLS encryption, require a trusted remote SMTP client certificate in order to allow TLS connections to proceed.'),
  p('smtpd_tls_security_level', '', 'str', 'The SMTP TLS security level for the Postfix SMTP server; when a non-empty value is specified, this overrides the obsolete parameters smtpd_use_tls and...'),
  p('smtpd_tls_session_cache_database', '', 'str', 'Name of the file containing the optional Postfix SMTP server TLS session cache.'),
  p('smtpd_tls_session_cache_timeout', '3600s', 'time', 's', 'The expiration time of Postfix SMTP server TLS session cache information.'),
  p('smtpd_tls_wrappermode', 'no', 'bool', 'Run the Postfix SMTP server in TLS "wrapper" mode, instead of using the STARTTLS command.'),
  p('smtpd_upstream_proxy_protocol', '', 'str', 'The name of the proxy protocol used by an optional before-smtpd proxy agent.'),
  p('smtpd_upstream_proxy_timeout', '5s', 'time', 's', 'The time limit for the proxy protocol specified with the smtpd_upstream_proxy_protocol parameter.'),
  p('smtpd_use_tls', 'no', 'bool', 'Opportunistic TLS: announce STARTTLS support to remote SMTP clients, but do not require that clients use TLS encryption.'),
  p('smtputf8_autodetect_classes', 'sendmail, verify', 'list', 'Detect that a message requires SMTPUTF8 support for the specified mail origin classes.'),
  p('smtputf8_enable', '${{$compatibility_level} <level {1} ? {no} : {yes}}', 'bool', 'Enable preliminary SMTPUTF8 support for the protocols described in RFC 6531, RFC 6532, and RFC 6533.'),
  p('soft_bounce', 'no', 'bool', 'Safety net to keep mail queued that would otherwise be returned to the sender.'),
  p('stale_lock_time', '500s', 'time', 's', 'The time after which a stale exclusive mailbox lockfile is removed.'),
  p('stress', '', 'str', 'This feature is documented in the STRESS_README document.'),
  p('strict_7bit_headers', 'no', 'bool', 'Reject mail with 8-bit text in message headers.'),
  p('strict_8bitmime', 'no', 'bool', 'Enable both strict_7bit_headers and strict_8bitmime_body.'),
  p('strict_8bitmime_body', 'no', 'bool', 'Reject 8-bit message body text without 8-bit MIME content encoding information.'),
  p('strict_mailbox_ownership', 'yes', 'bool', 'Defer delivery when a mailbox file is not owned by its recipient.'),
  p('strict_mime_encoding_domain', 'no', 'bool', 'Reject mail with invalid Content-Transfer-Encoding: information for the message/* or multipart/* MIME content types.'),
  p('strict_rfc821_envelopes', 'no', 'bool', 'Require that addresses received in SMTP MAIL FROM and RCPT TO commands are enclosed with <>, and that those addresses do not contain RFC 822 style comments...'),
  p('strict_smtputf8', 'no', 'bool', 'Enable stricter enforcement of the SMTPUTF8 protocol.'),
  p('sun_mailtool_compatibility', 'no', 'bool', 'Obsolete SUN mailtool compatibility feature.'),
  p('swap_bangpath', 'yes', 'bool', 'Enable the rewriting of "site!user" into "user@site".'),
  p('syslog_facility', 'mail', 'str', 'The syslog facility of Postfix logging.'),
  p('syslog_name', '${multi_instance_name?{$multi_instance_name}:{postfix}}', 'str', 'A prefix that is prepended to the process name in syslog records, so that, for example, "smtpd" becomes "prefix/smtpd".'),
  p('tcp_windowsize', '0', 'int', 'An optional workaround for routers that break TCP window scaling.'),
  p('tls_append_default_CA', 'no', 'bool', 'Append the system-supplied default Certification Authority certificates to the ones specified with *_tls_CApath or *_tls_CAfile.'),
  p('tls_config_file', 'default', 'str', 'Optional configuration file with baseline OpenSSL settings.'),
  p('tls_config_name', '', 'str', 'The application name passed by Postfix to OpenSSL library initialization functions.'),
  p('tls_daemon_random_bytes', '32', 'int', 'The number of pseudo-random bytes that an smtp(8) or smtpd(8) process requests from the tlsmgr(8) server in order to seed its internal pseudo random number...'),
  p('tls_dane_digests', 'sha512 sha256', 'str', 'DANE TLSA (RFC 6698, RFC 7671, RFC 7672) resource-record "matching type" digest algorithms in descending preference order.'),
  p('tls_disable_workarounds', '', 'str', 'List or bit-mask of OpenSSL bug work-arounds to disable.'),
  p('tls_eecdh_auto_curves', 'X25519 X448 prime256v1 secp521r1 secp384r1', 'str', 'The prioritized list of elliptic curves supported by the Postfix SMTP client and server.'),
  p('tls_eecdh_strong_curve', 'prime256v1', 'str', 'The elliptic curve used by the Postfix SMTP server for sensibly strong ephemeral ECDH key exchange.'),
  p('tls_eecdh_ultra_curve', 'secp384r1', 'str', 'The elliptic curve used by the Postfix SMTP server for maximally strong ephemeral ECDH key exchange.'),
  p('tls_export_cipherlist', 'aNULL:-aNULL:HIGH:MEDIUM:LOW:EXPORT:+RC4:@STRENGTH', 'str', 'The OpenSSL cipherlist for "export" or higher grade ciphers.'),
  p('tls_fast_shutdown_enable', 'yes', 'bool', 'A workaround for implementations that hang Postfix while shutting down a TLS session, until Postfix times out.'),
  p('tls_high_cipherlist', 'aNULL:-aNULL:HIGH:@STRENGTH', 'str', 'The OpenSSL cipherlist for "high" grade ciphers.'),
  p('tls_legacy_public_key_fingerprints', 'no', 'bool', 'A temporary migration aid for sites that use certificate public-key fingerprints with Postfix 2.9.0..2.9.5, which use an incorrect algorithm.'),
  p('tls_low_cipherlist', 'aNULL:-aNULL:HIGH:MEDIUM:LOW:+RC4:@STRENGTH', 'str', 'The OpenSSL cipherlist for "low" or higher grade ciphers.'),
  p('tls_medium_cipherlist', 'aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH', 'str', 'The OpenSSL cipherlist for "medium" or higher grade ciphers.'),
  p('tls_null_cipherlist', 'eNULL:!aNULL', 'str', 'The OpenSSL cipherlist for "NULL" grade ciphers that provide authentication without encryption.'),
  p('tls_preempt_cipherlist', 'no', 'bool', 'With SSLv3 and later, use the Postfix SMTP server\'s cipher preference order instead of the remote client\'s cipher preference order.'),
  p('tls_random_bytes', '32', 'int', 'The number of bytes that tlsmgr(8) reads from $tls_random_source when (re)seeding the in-memory pseudo random number generator (PRNG) pool.'),
  p('tls_random_exchange_name', '${data_directory}/prng_exch', 'str', 'Name of the pseudo random number generator (PRNG) state file that is maintained by tlsmgr(8).'),
  p('tls_random_prng_update_period', '3600s', 'time', 's', 'The time between attempts by tlsmgr(8) to save the state of the pseudo random number generator (PRNG) to the file specified with $tls_random_exchange_name.'),
  p('tls_random_reseed_period', '3600s', 'time', 's', 'The maximal time between attempts by tlsmgr(8) to re-seed the in-memory pseudo random number generator (PRNG) pool from external sources.'),
  p('tls_random_source', 'dev:/dev/urandom', 'str', 'The external entropy source for the in-memory tlsmgr(8) pseudo random number generator (PRNG) pool.'),
  p('tls_server_sni_maps', '', 'list', 'Optional lookup tables that map names received from remote SMTP clients via the TLS Server Name Indication (SNI) extension to the appropriate keys and...'),
  p('tls_session_ticket_cipher', 'aes-256-cbc', 'str', 'Algorithm used to encrypt RFC5077 TLS session tickets.'),
  p('tls_ssl_options', '', 'list', 'List or bit-mask of OpenSSL options to enable.'),
  p('tls_wildcard_matches_multiple_labels', 'yes', 'bool', 'Match multiple DNS labels with "*" in wildcard certificates.'),
  p('tlsmgr_service_name', 'tlsmgr', 'str', 'The name of the tlsmgr(8) service entry in master.cf.'),
  p('tlsproxy_client_CAfile', '$smtp_tls_CAfile', 'str', 'A file containing CA certificates of root CAs trusted to sign either remote TLS server certificates or intermediate CA certificates.'),
  p('tlsproxy_client_CApath', '$smtp_tls_CApath', 'str', 'Directory with PEM format Certification Authority certificates that the Postfix tlsproxy(8) client uses to verify a remote TLS server certificate.'),
  p('tlsproxy_client_cert_file', '$smtp_tls_cert_file', 'str', 'File with the Postfix tlsproxy(8) client RSA certificate in PEM format.'),
  p('tlsproxy_client_chain_files', '$smtp_tls_chain_files', 'str', 'Files with the Postfix tlsproxy(8) client keys and certificate chains in PEM format.'),
  p('tlsproxy_client_dcert_file', '$smtp_tls_dcert_file', 'str', 'File with the Postfix tlsproxy(8) client DSA certificate in PEM format.'),
  p('tlsproxy_client_dkey_file', '$smtp_tls_dkey_file', 'str', 'File with the Postfix tlsproxy(8) client DSA private key in PEM format.'),
  p('tlsproxy_client_eccert_file', '$smtp_tls_eccert_file', 'str', 'File with the Postfix tlsproxy(8) client ECDSA certificate in PEM format.'),
  p('tlsproxy_client_eckey_file', '$smtp_tls_eckey_file', 'str', 'File with the Postfix tlsproxy(8) client ECDSA private key in PEM format.'),
  p('tlsproxy_client_enforce_tls', '$smtp_enforce_tls', 'bool', 'Enforcement mode: require that SMTP servers use TLS encryption.'),
  p('tlsproxy_client_fingerprint_digest', '$smtp_tls_fingerprint_digest', 'str', 'The message digest algorithm used to construct remote TLS server certificate fingerprints.'),
  p('tlsproxy_client_key_file', '$smtp_tls_key_file', 'str', 'File with the Postfix tlsproxy(8) client RSA private key in PEM format.'),
  p('tlsproxy_client_loglevel', '$smtp_tls_loglevel', 'int', 'Enable additional Postfix tlsproxy(8) client logging of TLS activity.'),
  p('tlsproxy_client_loglevel_parameter', 'smtp_tls_loglevel', 'str', 'The name of the parameter that provides the tlsproxy_client_loglevel value.'),
  p('tlsproxy_client_per_site', '$smtp_tls_per_site', 'str', 'Optional lookup tables with the Postfix tlsproxy(8) client TLS usage policy by next-hop destination and by remote TLS server hostname.'),
  p('tlsproxy_client_policy_maps', '${tlsproxy_client_policy:$smtp_tls_policy_maps}', 'list', 'Optional lookup tables with the Postfix tlsproxy(8) client TLS security policy by next-hop destination.'),
  p('tlsproxy_client_scert_verifydepth', '$smtp_tls_scert_verifydepth', 'int', 'The verification depth for remote TLS server certificates.'),
  p('tlsproxy_client_security_level', '${tlsproxy_client_level:$smtp_tls_security_level}', 'str', 'The default TLS security level for the Postfix tlsproxy(8) client.'),
  p('tlsproxy_client_use_tls', '$smtp_use_tls', 'bool', 'Opportunistic mode: use TLS when a remote server announces TLS support.'),
  p('tlsproxy_enforce_tls', '$smtpd_enforce_tls', 'bool', 'Mandatory TLS: announce STARTTLS support to remote SMTP clients, and require that clients use TLS encryption.'),
  p('tlsproxy_service_name', 'tlsproxy', 'str', 'The name of the tlsproxy(8) service entry in master.cf.'),
  p('tlsproxy_tls_CAfile', '$smtpd_tls_CAfile', 'str', 'A file containing (PEM format) CA certificates of root CAs trusted to sign either remote SMTP client certificates or intermediate CA certificates.'),
  p('tlsproxy_tls_CApath', '$smtpd_tls_CApath', 'str', 'A directory containing (PEM format) CA certificates of root CAs trusted to sign either remote SMTP client certificates or intermediate CA certificates.'),
  p('tlsproxy_tls_always_issue_session_ids', '$smtpd_tls_always_issue_session_ids', 'bool', 'Force the Postfix tlsproxy(8) server to issue a TLS session id, even when TLS session caching is turned off.'),
  p('tlsproxy_tls_ask_ccert', '$smtpd_tls_ask_ccert', 'bool', 'Ask a remote SMTP client for a client certificate.'),
  p('tlsproxy_tls_ccert_verifydepth', '$smtpd_tls_ccert_verifydepth', 'int', 'The verification depth for remote SMTP client certificates.'),
  p('tlsproxy_tls_cert_file', '$smtpd_tls_cert_file', 'str', 'File with the Postfix tlsproxy(8) server RSA certificate in PEM format.'),
  p('tlsproxy_tls_chain_files', '$smtpd_tls_chain_files', 'str', 'Files with the Postfix tlsproxy(8) server keys and certificate chains in PEM format.'),
  p('tlsproxy_tls_ciphers', '$smtpd_tls_ciphers', 'str', 'The minimum TLS cipher grade that the Postfix tlsproxy(8) server will use with opportunistic TLS encryption.'),
  p('tlsproxy_tls_dcert_file', '$smtpd_tls_dcert_file', 'str', 'File with the Postfix tlsproxy(8) server DSA certificate in PEM format.'),
  p('tlsproxy_tls_dh1024_param_file', '$smtpd_tls_dh1024_param_file', 'str', 'File with DH parameters that the Postfix tlsproxy(8) server should use with non-export EDH ciphers.'),
  p('tlsproxy_tls_dh512_param_file', '$smtpd_tls_dh512_param_file', 'str', 'File with DH parameters that the Postfix tlsproxy(8) server should use with export-grade EDH ciphers.'),
  p('tlsproxy_tls_dkey_file', '$smtpd_tls_dkey_file', 'str', 'File with the Postfix tlsproxy(8) server DSA private key in PEM format.'),
  p('tlsproxy_tls_eccert_file', '$smtpd_tls_eccert_file', 'str', 'File with the Postfix tlsproxy(8) server ECDSA certificate in PEM format.'),
  p('tlsproxy_tls_eckey_file', '$smtpd_tls_eckey_file', 'str', 'File with the Postfix tlsproxy(8) server ECDSA private key in PEM format.'),
  p('tlsproxy_tls_eecdh_grade', '$smtpd_tls_eecdh_grade', 'str', 'The Postfix tlsproxy(8) server security grade for ephemeral elliptic-curve Diffie-Hellman (EECDH) key exchange.'),
  p('tlsproxy_tls_exclude_ciphers', '$smtpd_tls_exclude_ciphers', 'list', 'List of ciphers or cipher types to exclude from the tlsproxy(8) server cipher list at all TLS security levels.'),
  p('tlsproxy_tls_fingerprint_digest', '$smtpd_tls_fingerprint_digest', 'str', 'The message digest algorithm to construct remote SMTP client-certificate fingerprints.'),
  p('tlsproxy_tls_key_file', '$smtpd_tls_key_file', 'str', 'File with the Postfix tlsproxy(8) server RSA private key in PEM format.'),
  p('tlsproxy_tls_loglevel', '$smtpd_tls_loglevel', 'int', 'Enable additional Postfix tlsproxy(8) server logging of TLS activity.'),
  p('tlsproxy_tls_mandatory_ciphers', '$smtpd_tls_mandatory_ciphers', 'str', 'The minimum TLS cipher grade that the Postfix tlsproxy(8) server will use with mandatory TLS encryption.'),
  p('tlsproxy_tls_mandatory_exclude_ciphers', '$smtpd_tls_mandatory_exclude_ciphers', 'list', 'Additional list of ciphers or cipher types to exclude from the tlsproxy(8) server cipher list at mandatory TLS security levels.'),
  p('tlsproxy_tls_mandatory_protocols', '$smtpd_tls_mandatory_protocols', 'list', 'The SSL/TLS protocols accepted by the Postfix tlsproxy(8) server with mandatory TLS encryption.'),
  p('tlsproxy_tls_protocols', '$smtpd_tls_protocols', 'list', 'List of TLS protocols that the Postfix tlsproxy(8) server will exclude or include with opportunistic TLS encryption.'),
  p('tlsproxy_tls_req_ccert', '$smtpd_tls_req_ccert', 'bool', 'With mandatory TLS encryption, require a trusted remote SMTP client certificate in order to allow TLS connections to proceed.'),
  p('tlsproxy_tls_security_level', '$smtpd_tls_security_level', 'str', 'The SMTP TLS security level for the Postfix tlsproxy(8) server; when a non-empty value is specified, this overrides the obsolete parameters smtpd_use_tls...'),
  p('tlsproxy_use_tls', '$smtpd_use_tls', 'bool', 'Opportunistic TLS: announce STARTTLS support to remote SMTP clients, but do not require that clients use TLS encryption.'),
  p('tlsproxy_watchdog_timeout', '10s', 'time', 's', 'How much time a tlsproxy(8) process may take to process local or remote I/O before it is terminated by a built-in watchdog timer.'),
  p('trace_service_name', 'trace', 'str', 'The name of the trace service.'),
  p('transport_maps', '', 'list', 'Optional lookup tables with mappings from recipient address to (message delivery transport, next-hop destination).'),
  p('transport_retry_time', '60s', 'time', 's', 'The time between attempts by the Postfix queue manager to contact a malfunctioning message delivery transport.'),
  p('trigger_timeout', '10s', 'time', 's', 'The time limit for sending a trigger to a Postfix daemon (for example, the pickup(8) or qmgr(8) daemon).'),
  p('undisclosed_recipients_header', '', 'str', 'Message header that the Postfix cleanup(8) server inserts when a message contains no To: or Cc: message header.'),
  p('unknown_address_reject_code', '450', 'int', 'The numerical response code when the Postfix SMTP server rejects a sender or recipient address because its domain is unknown.'),
  p('unknown_address_tempfail_action', '$reject_tempfail_action', 'str', 'The Postfix SMTP server\'s action when reject_unknown_sender_domain or reject_unknown_recipient_domain fail due to a temporary error condition.'),
  p('unknown_client_reject_code', '450', 'int', 'The numerical Postfix SMTP server response code when a client without valid address <=> name mapping is rejected by the reject_unknown_client_hostname...'),
  p('unknown_helo_hostname_tempfail_action', '$reject_tempfail_action', 'str', 'The Postfix SMTP server\'s action when reject_unknown_helo_hostname fails due to a temporary error condition.'),
  p('unknown_hostname_reject_code', '450', 'int', 'The numerical Postfix SMTP server response code when the hostname specified with the HELO or EHLO command is rejected by the reject_unknown_helo_hostname...'),
  p('unknown_local_recipient_reject_code', '550', 'int', 'The numerical Postfix SMTP server response code when a recipient address is local, and $local_recipient_maps specifies a list of lookup tables that does not...'),
  p('unknown_relay_recipient_reject_code', '550', 'int', 'The numerical Postfix SMTP server reply code when a recipient address matches $relay_domains, and relay_recipient_maps specifies a list of lookup tables...'),
  p('unknown_virtual_alias_reject_code', '550', 'int', 'The Postfix SMTP server reply code when a recipient address matches $virtual_alias_domains, and $virtual_alias_maps specifies a list of lookup tables that...'),
  p('unknown_virtual_mailbox_reject_code', '550', 'int', 'The Postfix SMTP server reply code when a recipient address matches $virtual_mailbox_domains, and $virtual_mailbox_maps specifies a list of lookup tables...'),
  p('unverified_recipient_defer_code', '450', 'int', 'The numerical Postfix SMTP server response when a recipient address probe fails due to a temporary error condition.'),
  p('unverified_recipient_reject_code', '450', 'int', 'The numerical Postfix SMTP server response when a recipient address is rejected by the reject_unverified_recipient restriction.'),
  p('unverified_recipient_reject_reason', '', 'str', 'The Postfix SMTP server\'s reply when rejecting mail with reject_unverified_recipient.'),
  p('unverified_recipient_tempfail_action', '$reject_tempfail_action', 'str', 'The Postfix SMTP server\'s action when reject_unverified_recipient fails due to a temporary error condition.'),
  p('unverified_sender_defer_code', '450', 'int', 'The numerical Postfix SMTP server response code when a sender address probe fails due to a temporary error condition.'),
  p('unverified_sender_reject_code', '450', 'int', 'The numerical Postfix SMTP server response code when a recipient address is rejected by the reject_unverified_sender restriction.'),
  p('unverified_sender_reject_reason', '', 'str', 'The Postfix SMTP server\'s reply when rejecting mail with reject_unverified_sender.'),
  p('unverified_sender_tempfail_action', '$reject_tempfail_action', 'str', 'The Postfix SMTP server\'s action when reject_unverified_sender fails due to a temporary error condition.'),
  p('verp_delimiter_filter', '-=+', 'str', 'The characters Postfix accepts as VERP delimiter characters on the Postfix sendmail(1) command line and in SMTP commands.'),
  p('virtual_alias_address_length_limit', '1000', 'int', 'The maximal length of an email address after virtual alias expansion.'),
  p('virtual_alias_domains', '$virtual_alias_maps', 'list', 'Postfix is the final destination for the specified list of virtual alias domains, that is, domains for which all addresses are aliased to addresses in other...'),
  p('virtual_alias_expansion_limit', '1000', 'int', 'The maximal number of addresses that virtual alias expansion produces from each original recipient.'),
  p('virtual_alias_maps', '$virtual_maps', 'list', 'Optional lookup tables that alias specific mail addresses or domains to other local or remote addresses.'),
  p('virtual_alias_recursion_limit', '1000', 'int', 'The maximal nesting depth of virtual alias expansion.'),
  p('virtual_delivery_status_filter', '$default_delivery_status_filter', 'str', 'Optional filter for the virtual(8) delivery agent to change the delivery status code or explanatory text of successful or unsuccessful deliveries.'),
  p('virtual_gid_maps', '', 'list', 'Lookup tables with the per-recipient group ID for virtual(8) mailbox delivery.'),
  p('virtual_mailbox_base', '', 'str', 'A prefix that the virtual(8) delivery agent prepends to all pathname results from $virtual_mailbox_maps table lookups.'),
  p('virtual_mailbox_domains', '$virtual_mailbox_maps', 'list', 'Postfix is the final destination for the specified list of domains; mail is delivered via the $virtual_transport mail delivery transport.'),
  p('virtual_mailbox_limit', '51200000', 'size', 'The maximal size in bytes of an individual virtual(8) mailbox or maildir file, or zero (no limit).'),
  p('virtual_mailbox_lock', 'fcntl, dotlock', 'str', 'How to lock a UNIX-style virtual(8) mailbox before attempting delivery.'),
  p('virtual_mailbox_maps', '', 'list', 'Optional lookup tables with all valid addresses in the domains that match $virtual_mailbox_domains.'),
  p('virtual_minimum_uid', '100', 'int', 'The minimum user ID value that the virtual(8) delivery agent accepts as a result from $virtual_uid_maps table lookup.'),
  p('virtual_transport', 'virtual', 'str', 'The default mail delivery transport and next-hop destination for final delivery to domains listed with $virtual_mailbox_domains.'),
  p('virtual_uid_maps', '', 'list', 'Lookup tables with the per-recipient user ID that the virtual(8) delivery agent uses while writing to the recipient\'s mailbox.'),
];

/**
 * Parameters Postfix does not have: Postern's own. They are listed by `postern conf -d` but kept
 * out of PARAMS, whose defaults are compared with real Postfix's.
 */
export const POSTERN_PARAMS: readonly ParamSpec[] = [
  p('postern_dns_servers', '', 'list', 'The DNS servers Postern queries (host or host:port, comma or space separated); empty = the system resolver. Tests point it at a loopback DNS server.'),
  p('postern_mta_sts', 'no', 'bool', 'Apply MTA-STS (RFC 8461) policies in the SMTP client: discover _mta-sts.<domain> TXT, fetch https://mta-sts.<domain>/.well-known/mta-sts.txt, cache it for max_age; enforce = TLS level secure with the MX host checked against the policy, testing = logged only. smtp_tls_policy_maps and DANE take precedence.'),
  p('postern_mta_sts_port', '443', 'int', 'The HTTPS port of the MTA-STS policy host. Only tests change it (a loopback HTTPS server cannot use 443).'),
  p('postern_mta_sts_timeout', '10s', 'time', 's', 'Time limit for fetching one MTA-STS policy.'),
  p('postern_process_mode', '', 'str', 'Where the master runs a service: inline (in the master process), thread (a worker thread of it) or process (a child process of its own, killable and restarted alone); empty = the service\'s default (qmgr thread, the others inline). Set in main.cf for every service or per master.cf entry with -o postern_process_mode=process (docs/master.md).'),
  p('postern_process_count', '1', 'int', 'With postern_process_mode = process: how many child processes serve the service, each taking a share of its connections (round robin) and of its maxproc session limit. Set per master.cf entry with -o (docs/master.md).'),
];

const BY_NAME: ReadonlyMap<string, ParamSpec> = new Map([...PARAMS, ...POSTERN_PARAMS].map((s) => [s.name, s]));

/** The table entry for a built-in parameter, or undefined (user-defined or unknown). */
export function paramSpec(name: string): ParamSpec | undefined {
  return BY_NAME.get(name) ?? serviceParamSpec(name);
}

// ---------------------------------------------------------------------------------------------
// Computed defaults (Postfix global/mail_params.c: check_myhostname, check_mydomainname,
// check_mynetworks; postconf prints their result for -d).

/**
 * What a computed default may ask of the configuration it belongs to: the expanded value of
 * another parameter, or the expanded main.cf setting (undefined when main.cf does not set it).
 */
export interface DefaultContext {
  get(name: string): string;
  setting(name: string): string | undefined;
  configDir: string;
}

/** Parameters whose default is computed, and how. */
export const COMPUTED: Readonly<Record<string, (c: DefaultContext) => string>> = {
  myhostname: (c) => defaultMyHostname(hostname(), c.setting('mydomain')),
  mydomain: (c) => defaultMyDomain(c.get('myhostname')),
  mynetworks: (c) => defaultMyNetworks(c.get('mynetworks_style')),
  config_directory: (c) => c.configDir,
  process_id: () => String(process.pid),
  process_name: () => 'postconf',
  mail_name: () => POSTERN_MAIL_NAME,
  mail_version: () => POSTERN_MAIL_VERSION,
};

/**
 * "Raw" parameters (Postfix CONFIG_RAW_TABLE): never $name-expanded from main.cf, because their
 * macros ($home, $rbl_code, $user...) are filled in by the daemon at use time. MainConfig.get()
 * returns them as written and `postconf -x` prints them unexpanded.
 */
export const RAW_PARAMS: ReadonlySet<string> = new Set([
  'command_execution_directory', 'default_rbl_reply', 'forward_path', 'luser_relay', 'mailbox_command',
  'postscreen_expansion_filter', 'postscreen_reject_footer', 'smtpd_expansion_filter', 'smtpd_reject_footer',
]);

/** Set by the running program, not by main.cf (postconf: "read-only parameter assignment"). */
export const READONLY_PARAMS: ReadonlySet<string> = new Set(['process_id', 'process_name', 'service_name']);

/** Postfix's default when a name is not a FQDN (DEF_MYDOMAIN). */
export const DEF_MYDOMAIN = 'localdomain';

/**
 * myhostname default (check_myhostname): the machine's name (gethostname(), never DNS); when it
 * has no dot, `.` + main.cf's mydomain (evaluated) or `.localdomain` is appended — so a main.cf
 * that sets only `mydomain = myoffice.space` on host `localhost` gives `localhost.myoffice.space`.
 */
export function defaultMyHostname(machineName: string = hostname(), mydomainSetting?: string): string {
  if (machineName.includes('.')) return machineName;
  return `${machineName}.${mydomainSetting ?? DEF_MYDOMAIN}`;
}

/**
 * mydomain default (check_mydomainname in Postfix >= 2.3): $myhostname minus its first label;
 * `localdomain` when myhostname has no dot. NB Postfix 3.7 really gives `space` for
 * `myhostname = myoffice.space`; the "unless that leaves a top-level domain" rule the seed's
 * Table 3 quotes was Postfix <= 2.2 behaviour (see docs/main-cf.md).
 */
export function defaultMyDomain(myhostname: string): string {
  const dot = myhostname.indexOf('.');
  return dot < 0 ? DEF_MYDOMAIN : myhostname.slice(dot + 1);
}

export interface LocalAddress { address: string; family: 'IPv4' | 'IPv6'; prefix: number }

/** The machine's interface addresses, IPv4 first then IPv6, as Postfix's inet_addr_local() lists them. */
export function localAddresses(): LocalAddress[] {
  const v4: LocalAddress[] = [];
  const v6: LocalAddress[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const prefix = Number(a.cidr?.split('/')[1] ?? (a.family === 'IPv4' ? 32 : 128));
      const address = a.address.replace(/%.*$/, '');
      (a.family === 'IPv4' ? v4 : v6).push({ address, family: a.family, prefix });
    }
  }
  return [...v4, ...v6];
}

/**
 * mynetworks default (global/mynetworks.c): `host` → each interface address /32 or [addr]/128;
 * `subnet` → each interface's network; `class` → the IPv4 class A/B/C/D network (IPv6 as subnet).
 */
export function defaultMyNetworks(style: string, addrs: LocalAddress[] = localAddresses()): string {
  const s = style.trim().toLowerCase();
  if (s !== 'host' && s !== 'subnet' && s !== 'class') {
    throw new Error(`unknown mynetworks_style parameter value: ${style}`);
  }
  const out: string[] = [];
  for (const a of addrs) {
    if (a.family === 'IPv4') {
      let prefix = a.prefix;
      if (s === 'host') prefix = 32;
      else if (s === 'class') {
        const first = Number(a.address.split('.')[0]);
        prefix = first < 128 ? 8 : first < 192 ? 16 : first < 224 ? 24 : 4;
      }
      out.push(`${maskIPv4(a.address, prefix)}/${prefix}`);
    } else {
      const prefix = s === 'host' ? 128 : a.prefix;
      out.push(`[${maskIPv6(a.address, prefix)}]/${prefix}`);
    }
  }
  return out.join(' ');
}

function maskIPv4(addr: string, prefix: number): string {
  const n = addr.split('.').reduce((acc, o) => (acc * 256) + Number(o), 0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const m = (n & mask) >>> 0;
  return [m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255].join('.');
}

/** Mask an IPv6 address and print it as inet_ntop does (RFC 5952: longest zero run → ::). */
export function maskIPv6(addr: string, prefix: number): string {
  const words = expandIPv6(addr);
  for (let i = 0; i < 8; i++) {
    const bits = Math.max(0, Math.min(16, prefix - i * 16));
    words[i] = words[i]! & (bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff);
  }
  return compressIPv6(words);
}

function expandIPv6(addr: string): number[] {
  let a = addr;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    a = a.slice(0, v4.index) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = a.includes('::') ? a.split('::') as [string, string] : [a, undefined];
  const h = head ? head.split(':').map((x) => parseInt(x, 16)) : [];
  const t = tail ? tail.split(':').map((x) => parseInt(x, 16)) : [];
  const fill = tail === undefined ? [] : new Array<number>(8 - h.length - t.length).fill(0);
  return [...h, ...fill, ...t];
}

function compressIPv6(w: number[]): string {
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

// ---------------------------------------------------------------------------------------------
// Per-service parameters (Postfix postconf_service.c / qmgr): for each master.cf service that
// runs a delivery agent, `<service>_<suffix>` parameters exist with these defaults.

/** Delivery-agent commands whose master.cf services get per-transport parameters. */
export const DELIVERY_AGENTS: ReadonlySet<string> = new Set(['smtp', 'lmtp', 'local', 'virtual', 'pipe', 'error']);

/** suffix → default, the qmgr(8) per-transport parameters (`_time_limit` only for pipe(8) services). */
export const SERVICE_PARAM_SUFFIXES: ReadonlyArray<readonly [string, string, ParamType, string?]> = [
  ['delivery_slot_cost', '$default_delivery_slot_cost', 'int'],
  ['delivery_slot_discount', '$default_delivery_slot_discount', 'int'],
  ['delivery_slot_loan', '$default_delivery_slot_loan', 'int'],
  ['destination_concurrency_failed_cohort_limit', '$default_destination_concurrency_failed_cohort_limit', 'int'],
  ['destination_concurrency_limit', '$default_destination_concurrency_limit', 'int'],
  ['destination_concurrency_negative_feedback', '$default_destination_concurrency_negative_feedback', 'str'],
  ['destination_concurrency_positive_feedback', '$default_destination_concurrency_positive_feedback', 'str'],
  ['destination_rate_delay', '$default_destination_rate_delay', 'time', 's'],
  ['destination_recipient_limit', '$default_destination_recipient_limit', 'int'],
  ['extra_recipient_limit', '$default_extra_recipient_limit', 'int'],
  ['initial_destination_concurrency', '$initial_destination_concurrency', 'int'],
  ['minimum_delivery_slots', '$default_minimum_delivery_slots', 'int'],
  ['recipient_limit', '$default_recipient_limit', 'int'],
  ['recipient_refill_delay', '$default_recipient_refill_delay', 'time', 's'],
  ['recipient_refill_limit', '$default_recipient_refill_limit', 'int'],
  ['time_limit', '$command_time_limit', 'time', 's'],
  ['transport_rate_delay', '$default_transport_rate_delay', 'time', 's'],
];

/** Services registered by registerServices() (postconf does this from master.cf): name → command. */
const services = new Map<string, string>();

/** Make `<service>_<suffix>` parameters known for master.cf services running a delivery agent. */
export function registerServices(entries: Iterable<{ service: string; command: string }>): void {
  services.clear(); // one master.cf at a time
  for (const e of entries) if (DELIVERY_AGENTS.has(e.command)) services.set(e.service, e.command);
}

/**
 * The default of `<transport>_<suffix>` for any transport name, registered or not (qmgr reads
 * e.g. `relay_destination_concurrency_limit` for whatever master.cf defines), else undefined.
 */
export function transportParamDefault(name: string): string | undefined {
  for (const [suffix, def] of SERVICE_PARAM_SUFFIXES) {
    if (name.length > suffix.length + 1 && name.endsWith('_' + suffix)) return def;
  }
  return undefined;
}

/** The per-service parameters of one service, skipping names the static table already has. */
export function serviceParams(service: string, command = services.get(service) ?? 'smtp'): ParamSpec[] {
  const out: ParamSpec[] = [];
  for (const [suffix, def, type, unit] of SERVICE_PARAM_SUFFIXES) {
    const name = `${service}_${suffix}`;
    if (BY_NAME.has(name) || (suffix === 'time_limit' && command !== 'pipe')) continue;
    out.push(unit ? { name, default: def, type, unit, doc: `The ${service} service's ${suffix.replace(/_/g, ' ')} (qmgr(8) per-transport parameter).` }
      : { name, default: def, type, doc: `The ${service} service's ${suffix.replace(/_/g, ' ')} (qmgr(8) per-transport parameter).` });
  }
  return out;
}

function serviceParamSpec(name: string): ParamSpec | undefined {
  for (const s of services.keys()) {
    if (!name.startsWith(s + '_')) continue;
    const hit = serviceParams(s).find((x) => x.name === name);
    if (hit) return hit;
  }
  return undefined;
}

/** Every known parameter: the static table plus registered per-service ones. */
export function allParams(): ParamSpec[] {
  const out = [...PARAMS, ...POSTERN_PARAMS];
  for (const s of services.keys()) out.push(...serviceParams(s));
  return out;
}
