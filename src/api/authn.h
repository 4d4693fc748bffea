// Authentication of REST calls and sockets: API keys, signed access tokens, ws tokens and
// client credentials, resolved to a principal against the directory (so a deleted app, an
// ended login or a blocked user fails at once). Thread-safe; may block on the store
// (claim_ws_token), so not for shard threads.
#pragma once

#include <string_view>

#include "api/services.h"
#include "transport/http_types.h"

namespace herald {

principal principal_of_app(const app_record& a, bool via_api_key);

// Claims of a new token for `who` (audience, kind, a fresh jti, lifetime from now): the one
// place every dialect builds its access and ws tokens.
token_claims claims_for(const principal& who, std::string_view aud, std::string_view kind,
                        std::int64_t ttl_ms);

// A principal from verified token claims, re-checked against the directory.
result<principal> principal_of_claims(const services& s, const token_claims& c);

// The rights `who` holds now, re-read from the directory (after an admin edit): the same
// identity, login and app; auth_failed when it may no longer act (deleted, blocked, ended).
result<principal> current_rights(const services& s, const principal& who);

// An admin changed the rights of user `user_id` or app `app_id` (one of them non-empty): every
// open socket acting as it, on every shard, takes its current rights at once, and closes as
// revoked when they no longer allow its subscription (hub::refresh_where); its detached
// sessions (waiting for a resume) take them too. Asynchronous: the sockets apply it within one
// post of their shards. The one call each rights change makes.
void apply_rights_change(services& s, const std::string& user_id, const std::string& app_id);

// `Authorization: Bearer <token|api key>` or `X-API-Key`, for tokens of `audience`.
result<principal> authenticate(const services& s, const http_request& req,
                               std::string_view audience);
// One bearer credential: a signed access token of `audience`, or an API key.
result<principal> authenticate_credential(const services& s, std::string_view credential,
                                          std::string_view audience);

// A single-use ws token (kind "ws") of `audience`: verified, then claimed in the store's
// replay guard. A native access token is accepted too when `allow_access` is set.
result<principal> authenticate_ws_token(services& s, std::string_view token,
                                        std::string_view audience, bool allow_access);

// Client authentication of an OAuth grant: HTTP Basic, or client_id/client_secret form fields.
result<app_record> authenticate_client(const services& s, const http_request& req,
                                       std::string_view form_client_id,
                                       std::string_view form_client_secret);

// Parses an application/x-www-form-urlencoded body (or query string) field.
std::optional<std::string> form_field(std::string_view body, std::string_view name);

}  // namespace herald
