//! The simulated Google sign-in: the consent page of the authorization endpoint and the token
//! endpoint (authorization code with PKCE S256, refresh), with the refusals Google answers.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use serde_json::json;

use super::Answer;

/// Seconds an access token lives, as Google answers.
pub const ACCESS_TOKEN_SECONDS: i64 = 3599;
/// An authorization code is good for this long.
const CODE_MINUTES: i64 = 10;

/// What the consent screen answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consent {
    /// Show the page with 「許可」 and 「拒否」 (a browser decides).
    #[default]
    Ask,
    /// Redirect with a code at once, as if 「許可」 was pressed for the `login_hint` account.
    Allow,
    /// Redirect with `error=access_denied` at once.
    Deny,
    /// A Workspace administrator forbids the app: Google's error page `admin_policy_enforced`.
    AdminPolicyEnforced,
    /// An "internal" OAuth client used from another organization: error page `org_internal`.
    OrgInternal,
}

/// The account the consent page proposes when the request carries no `login_hint`.
pub const DEFAULT_ACCOUNT: &str = "user@example.com";

#[derive(Debug, Clone)]
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: Option<String>,
    login_hint: Option<String>,
}

#[derive(Debug, Clone)]
struct IssuedCode {
    request: AuthRequest,
    account: String,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    account: String,
    scope: String,
    revoked: bool,
}

#[derive(Debug, Clone)]
struct Access {
    account: String,
    refresh_token: Option<String>,
    expires_at: DateTime<Utc>,
}

/// Clients, pending consents, codes and tokens.
#[derive(Debug)]
pub(super) struct Auth {
    clients: BTreeMap<String, String>,
    pub(super) consent: Consent,
    pending: HashMap<String, AuthRequest>,
    codes: HashMap<String, IssuedCode>,
    refresh_tokens: HashMap<String, Grant>,
    access_tokens: HashMap<String, Access>,
}

impl Auth {
    pub(super) fn new(client_id: &str, client_secret: &str) -> Self {
        Self {
            clients: BTreeMap::from([(client_id.to_string(), client_secret.to_string())]),
            consent: Consent::Ask,
            pending: HashMap::new(),
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
        }
    }

    pub(super) fn add_client(&mut self, id: &str, secret: &str) {
        self.clients.insert(id.into(), secret.into());
    }

    pub(super) fn issue_refresh_token(&mut self, client_id: &str, account: &str) -> String {
        let token = format!("1//sim-{}", random_token(40));
        self.refresh_tokens.insert(
            token.clone(),
            Grant {
                client_id: client_id.into(),
                account: account.into(),
                scope: crate::google::CALENDAR_SCOPE.into(),
                revoked: false,
            },
        );
        token
    }

    pub(super) fn issue_access_token(&mut self, account: &str, refresh: Option<&str>) -> String {
        let token = format!("ya29.sim-{}", random_token(48));
        self.access_tokens.insert(
            token.clone(),
            Access {
                account: account.into(),
                refresh_token: refresh.map(str::to_string),
                expires_at: Utc::now() + TimeDelta::seconds(ACCESS_TOKEN_SECONDS),
            },
        );
        token
    }

    /// Revokes a refresh token and the access tokens made from it.
    pub(super) fn revoke(&mut self, refresh_token: &str) {
        if let Some(grant) = self.refresh_tokens.get_mut(refresh_token) {
            grant.revoked = true;
        }
        self.access_tokens
            .retain(|_, a| a.refresh_token.as_deref() != Some(refresh_token));
    }

    pub(super) fn expire_access_tokens(&mut self) {
        let past = Utc::now() - TimeDelta::seconds(1);
        for access in self.access_tokens.values_mut() {
            access.expires_at = past;
        }
    }

    /// The account an `Authorization: Bearer …` header stands for, if valid and unexpired.
    pub(super) fn account_of(&self, authorization: Option<&str>) -> Option<String> {
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        let access = self.access_tokens.get(token)?;
        (access.expires_at > Utc::now()).then(|| access.account.clone())
    }

    /// `GET /o/oauth2/v2/auth`: the consent page, or an immediate answer per [`Consent`].
    pub(super) fn authorize(&mut self, query: &[(String, String)]) -> Answer {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let Some(client_id) = get("client_id").filter(|id| self.clients.contains_key(id)) else {
            return error_page(401, "invalid_client", "The OAuth client was not found.");
        };
        let Some(redirect_uri) = get("redirect_uri").filter(|u| !u.is_empty()) else {
            return error_page(
                400,
                "invalid_request",
                "Missing required parameter: redirect_uri",
            );
        };
        if get("response_type").as_deref() != Some("code") {
            return error_page(
                400,
                "unsupported_response_type",
                "response_type must be code",
            );
        }
        let Some(scope) = get("scope").filter(|s| !s.is_empty()) else {
            return error_page(400, "invalid_request", "Missing required parameter: scope");
        };
        let code_challenge = get("code_challenge");
        if code_challenge.is_some() && get("code_challenge_method").as_deref() != Some("S256") {
            return error_page(400, "invalid_request", "code_challenge_method must be S256");
        }
        let request = AuthRequest {
            client_id,
            redirect_uri,
            scope,
            state: get("state"),
            code_challenge,
            login_hint: get("login_hint"),
        };
        match self.consent {
            Consent::AdminPolicyEnforced => error_page(
                400,
                "admin_policy_enforced",
                "管理者のポリシーにより、このアプリへのアクセスは許可されていません。",
            ),
            Consent::OrgInternal => error_page(
                403,
                "org_internal",
                "このクライアントは組織内のユーザーに限定されています。",
            ),
            Consent::Allow => {
                let account = request.login_hint.clone().unwrap_or(DEFAULT_ACCOUNT.into());
                self.grant_code(request, &account)
            }
            Consent::Deny => deny(&request),
            Consent::Ask => {
                let id = random_token(24);
                let page = consent_page(&id, &request);
                self.pending.insert(id, request);
                page
            }
        }
    }

    /// `POST /o/oauth2/v2/auth`: the button pressed on the consent page.
    pub(super) fn decide(&mut self, form: &[(String, String)]) -> Answer {
        let get = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_string())
        };
        let Some(request) = get("request").and_then(|id| self.pending.remove(&id)) else {
            return error_page(
                400,
                "invalid_request",
                "この同意画面は使用済みか期限切れです。",
            );
        };
        if get("decision").as_deref() != Some("allow") {
            return deny(&request);
        }
        let account = get("account")
            .filter(|a| a.contains('@'))
            .unwrap_or(DEFAULT_ACCOUNT.into());
        self.grant_code(request, &account)
    }

    fn grant_code(&mut self, request: AuthRequest, account: &str) -> Answer {
        let code = format!("4/sim-{}", random_token(40));
        let mut location = redirect_base(&request.redirect_uri);
        location.push_str(&format!(
            "code={}&scope={}",
            crate::google::encode_component(&code),
            crate::google::encode_component(&request.scope)
        ));
        if let Some(state) = &request.state {
            location.push_str(&format!(
                "&state={}",
                crate::google::encode_component(state)
            ));
        }
        self.codes.insert(
            code,
            IssuedCode {
                request,
                account: account.into(),
                expires_at: Utc::now() + TimeDelta::minutes(CODE_MINUTES),
            },
        );
        Answer::redirect(&location)
    }

    /// `POST /token`. `basic` is the `Authorization: Basic` header, when the client sent one.
    pub(super) fn token(&mut self, form: &[(String, String)], basic: Option<&str>) -> Answer {
        let get = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let from_header = basic.and_then(basic_credentials);
        let (client_id, client_secret) = match (&from_header, get("client_id")) {
            (Some((id, secret)), _) => (id.clone(), secret.clone()),
            (None, Some(id)) => (
                id.to_string(),
                get("client_secret").unwrap_or("").to_string(),
            ),
            (None, None) => {
                return token_error(
                    400,
                    "invalid_request",
                    "Could not determine client ID from request.",
                )
            }
        };
        if self.clients.get(&client_id) != Some(&client_secret) {
            return token_error(401, "invalid_client", "The OAuth client was not found.");
        }
        match get("grant_type") {
            Some("authorization_code") => self.exchange(
                &client_id,
                get("code").unwrap_or(""),
                get("redirect_uri").unwrap_or(""),
                get("code_verifier"),
            ),
            Some("refresh_token") => {
                let token = get("refresh_token").unwrap_or("");
                match self.refresh_tokens.get(token).cloned() {
                    Some(grant) if !grant.revoked && grant.client_id == client_id => {
                        let access = self.issue_access_token(&grant.account, Some(token));
                        Answer::json(
                            200,
                            &json!({"access_token": access, "expires_in": ACCESS_TOKEN_SECONDS,
                                    "scope": grant.scope, "token_type": "Bearer"}),
                        )
                    }
                    Some(grant) if !grant.revoked => {
                        token_error(400, "unauthorized_client", "Unauthorized")
                    }
                    _ => token_error(400, "invalid_grant", "Token has been expired or revoked."),
                }
            }
            _ => token_error(400, "unsupported_grant_type", "Invalid grant_type"),
        }
    }

    fn exchange(
        &mut self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Answer {
        // A code is single-use: even a failed exchange spends it.
        let Some(issued) = self.codes.remove(code) else {
            return token_error(400, "invalid_grant", "Malformed auth code.");
        };
        if issued.expires_at <= Utc::now() || issued.request.client_id != client_id {
            return token_error(400, "invalid_grant", "Bad Request");
        }
        if issued.request.redirect_uri != redirect_uri {
            return token_error(400, "redirect_uri_mismatch", "Bad Request");
        }
        if let Some(challenge) = &issued.request.code_challenge {
            match verifier {
                None => return token_error(400, "invalid_grant", "Missing code verifier."),
                Some(v) if !pkce_matches(v, challenge) => {
                    return token_error(400, "invalid_grant", "Invalid code verifier.")
                }
                Some(_) => {}
            }
        }
        let refresh = self.issue_refresh_token(client_id, &issued.account);
        if let Some(grant) = self.refresh_tokens.get_mut(&refresh) {
            grant.scope = issued.request.scope.clone();
        }
        let access = self.issue_access_token(&issued.account, Some(&refresh));
        Answer::json(
            200,
            &json!({"access_token": access, "expires_in": ACCESS_TOKEN_SECONDS,
                    "refresh_token": refresh, "scope": issued.request.scope,
                    "token_type": "Bearer"}),
        )
    }
}

/// PKCE S256: `BASE64URL(SHA256(verifier)) == challenge`.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    pkce_challenge(verifier) == challenge
}

/// The S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(crate::hash::sha256(verifier.as_bytes()))
}

fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header.trim().strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((decode(id), decode(secret)))
}

fn random_token(length: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    (0..length)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

fn redirect_base(redirect_uri: &str) -> String {
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}")
}

fn deny(request: &AuthRequest) -> Answer {
    let mut location = redirect_base(&request.redirect_uri);
    location.push_str("error=access_denied");
    if let Some(state) = &request.state {
        location.push_str(&format!(
            "&state={}",
            crate::google::encode_component(state)
        ));
    }
    Answer::redirect(&location)
}

fn token_error(status: u16, error: &str, description: &str) -> Answer {
    Answer::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn error_page(status: u16, error: &str, message: &str) -> Answer {
    Answer::html(
        status,
        format!(
            "<!DOCTYPE html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>エラー {status}: {error}</title></head>\
             <body><h1>アクセスをブロック: 承認エラー</h1><p>{}</p><p>エラー {status}: {}</p></body></html>",
            escape(message),
            escape(error)
        ),
    )
}

fn consent_page(id: &str, request: &AuthRequest) -> Answer {
    let account = request.login_hint.as_deref().unwrap_or(DEFAULT_ACCOUNT);
    Answer::html(
        200,
        format!(
            "<!DOCTYPE html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>Google にログイン (シミュレータ)</title></head>\
             <body><h1>dncs が Google アカウントへのアクセスをリクエストしています</h1>\
             <p>クライアント: <code>{client}</code></p><p>スコープ: <code>{scope}</code></p>\
             <p>リダイレクト先: <code>{redirect}</code></p>\
             <form method=\"post\" action=\"/o/oauth2/v2/auth\">\
             <input type=\"hidden\" name=\"request\" value=\"{id}\">\
             <label>アカウント <input type=\"email\" name=\"account\" value=\"{account}\"></label>\
             <button type=\"submit\" name=\"decision\" value=\"allow\">許可</button>\
             <button type=\"submit\" name=\"decision\" value=\"deny\">拒否</button>\
             </form></body></html>",
            client = escape(&request.client_id),
            scope = escape(&request.scope),
            redirect = escape(&request.redirect_uri),
            id = escape(id),
            account = escape(account),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(pkce_challenge(verifier), challenge);
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches("another-verifier", challenge));
    }

    #[test]
    fn basic_credentials_are_read() {
        let header = format!("Basic {}", STANDARD.encode("my%20id:s%2Bcret"));
        assert_eq!(
            basic_credentials(&header),
            Some(("my id".into(), "s+cret".into()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
    }
}
