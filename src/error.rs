//! Every failure the gateway answers itself, and the one place that maps each to a status, a code and a sentence.

use crate::auth::access::TokenRejection;
use crate::edge::framing::FramingError;
use crate::edge::EdgeRejection;
use crate::store::StoreError;
use http::StatusCode;

/// The cause of an internal error: kept for the log, never shown to a client.
pub(crate) type InternalCause = Box<dyn std::error::Error + Send + Sync>;

/// A failure answered by the gateway with a JSON `{"error","detail"}` body.
///
/// The `Display` text is the `detail` a client reads; causes kept in a
/// variant are for the log line written where the answer is sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ErrorReply {
    /// The body is not JSON, or not an object.
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// A form body (by its Content-Type) that cannot be read: the same code as
    /// unreadable JSON, `malformed_json`, the code of an unreadable body.
    #[error("request body is not a valid form: {0}")]
    MalformedForm(String),
    /// The request itself is not valid HTTP.
    #[error("the request is not valid HTTP")]
    MalformedRequest,
    /// The edge refused an ambiguous request (path, host, header names, Authorization).
    #[error("{}", edge_detail(*.0))]
    Refused(EdgeRejection),
    /// The client did not send the whole auth request body within the deadline.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// A required field is absent.
    #[error("field `{0}` is required")]
    MissingField(&'static str),
    /// A field is present but unacceptable.
    #[error("field `{field}` {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong, as a predicate ("must be ...").
        reason: String,
    },
    /// Unknown email or wrong password (deliberately indistinguishable).
    #[error("email or password is incorrect")]
    InvalidCredentials,
    /// The access token is missing or not acceptable.
    #[error("{}", token_detail(*.0))]
    InvalidToken(TokenRejection),
    /// The refresh token is unknown, used, revoked or expired.
    #[error("refresh token is invalid or expired")]
    InvalidRefreshToken,
    /// The token is valid but its user no longer exists.
    #[error("the user of this token no longer exists")]
    UnknownUser,
    /// Registration for an email that has an account.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// `registration.enabled` is false.
    #[error("registration is closed")]
    RegistrationClosed,
    /// The route table has no match.
    #[error("no route for this path")]
    NoRoute,
    /// An admin call names no live user.
    #[error("no such user")]
    UnknownAccount,
    /// `DELETE /sessions/<id>` names no live session of the caller.
    #[error("no such session")]
    NoSession,
    /// Wrong method on an auth endpoint, or on a route limited by `methods`.
    #[error("method not allowed; use {allow}")]
    MethodNotAllowed {
        /// Value of the `Allow` header.
        allow: std::borrow::Cow<'static, str>,
    },
    /// A valid token whose roles include none the route names.
    #[error("this route needs a role the token does not have")]
    Forbidden,
    /// A WebSocket upgrade from an `Origin` the route does not list.
    #[error("this origin may not open WebSockets on this route")]
    OriginNotAllowed,
    /// A cookie-authenticated unsafe request that did not come from the
    /// gateway's own origin (cross-site request forgery).
    #[error("this request did not come from this site's own pages")]
    Csrf,
    /// A CORS preflight or request the `cors` section refuses.
    #[error("{}", cors_detail(*.0))]
    Cors(crate::proxy::cors::CorsRefusal),
    /// The right password for a disabled account.
    #[error("this account is disabled")]
    AccountDisabled,
    /// Auth request body over the cap.
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap.
        limit: usize,
    },
    /// Redis cannot be reached or did not answer in time.
    #[error("the session store is unavailable, try again shortly")]
    StoreUnavailable(#[source] StoreError),
    /// Too many requests wait for a hashing slot, or one waited past the queue timeout.
    #[error("the server is busy, try again shortly")]
    Busy,
    /// A throttle refused the request before any password hashing.
    #[error("too many attempts; try again in {retry_after} seconds")]
    TooManyAttempts {
        /// Seconds until the throttle lets one more through (`Retry-After`).
        retry_after: u64,
    },
    /// The chosen upstream could not be reached or failed mid-request.
    #[error("the upstream service could not be reached")]
    BadGateway,
    /// An upgrade past `limits.max_websockets_per_user` or `_per_ip`.
    #[error("too many open WebSockets for this user or address")]
    TooManyWebSockets,
    /// No healthy peer in the upstream cluster.
    #[error("no healthy upstream peer is available")]
    NoHealthyUpstream,
    /// The upstream did not answer in time.
    #[error("the upstream service did not answer in time")]
    UpstreamTimeout,
    /// A bug or broken data on our side; the cause goes to the log, never to the client.
    #[error("internal error")]
    Internal(#[source] InternalCause),
}

fn edge_detail(r: EdgeRejection) -> &'static str {
    match r {
        EdgeRejection::Path(p) => p.detail(),
        EdgeRejection::Host(h) => h.detail(),
        EdgeRejection::UnderscoreHeader => {
            "header names with underscores are not accepted; use hyphens"
        }
        EdgeRejection::AmbiguousAuthorization => {
            "send one Authorization header with one credential"
        }
        EdgeRejection::Framing(f) => f.detail(),
    }
}

fn cors_detail(r: crate::proxy::cors::CorsRefusal) -> &'static str {
    use crate::proxy::cors::CorsRefusal::*;
    match r {
        MalformedOrigin => "send one Origin header with one origin (scheme://host[:port])",
        Origin => "this origin may not make cross-origin requests here",
        Method => "this method is not allowed from another origin here",
        Header => "a requested header is not allowed from another origin",
    }
}

fn token_detail(r: TokenRejection) -> &'static str {
    match r {
        TokenRejection::Missing => {
            "authentication required: send Authorization: Bearer <access token>"
        }
        TokenRejection::Expired => "access token has expired",
        _ => "access token is invalid",
    }
}

impl From<crate::domain::InvalidField> for ErrorReply {
    fn from(e: crate::domain::InvalidField) -> Self {
        ErrorReply::InvalidField {
            field: e.field,
            reason: e.reason,
        }
    }
}

impl From<StoreError> for ErrorReply {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ErrorReply::StoreUnavailable(e),
            StoreError::Corrupt(_) => ErrorReply::Internal(Box::new(e)),
        }
    }
}

impl ErrorReply {
    /// An invalid field with the reason.
    pub(crate) fn invalid_field(field: &'static str, reason: impl Into<String>) -> ErrorReply {
        ErrorReply::InvalidField {
            field,
            reason: reason.into(),
        }
    }

    /// An internal error caused by `cause` (logged when answered).
    pub(crate) fn internal(cause: impl Into<InternalCause>) -> ErrorReply {
        ErrorReply::Internal(cause.into())
    }

    /// HTTP status and the stable snake_case code clients branch on: one match for both.
    pub(crate) fn status_and_code(&self) -> (StatusCode, &'static str) {
        use crate::proxy::cors::CorsRefusal;
        use ErrorReply::*;
        use StatusCode as S;
        match self {
            MalformedRequest => (S::BAD_REQUEST, "bad_request"),
            MalformedJson(_) | MalformedForm(_) => (S::BAD_REQUEST, "malformed_json"),
            MissingField(_) => (S::BAD_REQUEST, "missing_field"),
            InvalidField { .. } => (S::BAD_REQUEST, "invalid_field"),
            Refused(EdgeRejection::Path(_)) => (S::BAD_REQUEST, "invalid_path"),
            Refused(EdgeRejection::Host(_)) => (S::BAD_REQUEST, "invalid_host"),
            Refused(EdgeRejection::UnderscoreHeader) => (S::BAD_REQUEST, "invalid_header"),
            Refused(EdgeRejection::AmbiguousAuthorization) => {
                (S::BAD_REQUEST, "invalid_authorization")
            }
            Refused(EdgeRejection::Framing(FramingError::Ambiguous)) => {
                (S::BAD_REQUEST, "invalid_framing")
            }
            Refused(EdgeRejection::Framing(FramingError::UnsupportedCoding)) => {
                (S::NOT_IMPLEMENTED, "unsupported_transfer_coding")
            }
            InvalidCredentials => (S::UNAUTHORIZED, "invalid_credentials"),
            InvalidToken(TokenRejection::Missing) => (S::UNAUTHORIZED, "missing_token"),
            InvalidToken(TokenRejection::Expired) => (S::UNAUTHORIZED, "token_expired"),
            InvalidToken(_) => (S::UNAUTHORIZED, "invalid_token"),
            InvalidRefreshToken => (S::UNAUTHORIZED, "invalid_refresh_token"),
            UnknownUser => (S::UNAUTHORIZED, "unknown_user"),
            NoRoute | NoSession | UnknownAccount => (S::NOT_FOUND, "not_found"),
            MethodNotAllowed { .. } => (S::METHOD_NOT_ALLOWED, "method_not_allowed"),
            RequestTimeout => (S::REQUEST_TIMEOUT, "request_timeout"),
            EmailTaken => (S::CONFLICT, "email_taken"),
            RegistrationClosed => (S::FORBIDDEN, "registration_closed"),
            Forbidden => (S::FORBIDDEN, "forbidden"),
            OriginNotAllowed => (S::FORBIDDEN, "origin_not_allowed"),
            Csrf => (S::FORBIDDEN, "csrf"),
            Cors(CorsRefusal::MalformedOrigin) => (S::BAD_REQUEST, "invalid_origin"),
            Cors(CorsRefusal::Origin) => (S::FORBIDDEN, "origin_not_allowed"),
            Cors(CorsRefusal::Method) => (S::FORBIDDEN, "cors_method_not_allowed"),
            Cors(CorsRefusal::Header) => (S::FORBIDDEN, "cors_header_not_allowed"),
            AccountDisabled => (S::FORBIDDEN, "account_disabled"),
            TooManyAttempts { .. } => (S::TOO_MANY_REQUESTS, "too_many_attempts"),
            TooManyWebSockets => (S::TOO_MANY_REQUESTS, "too_many_websockets"),
            BodyTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "body_too_large"),
            Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal_error"),
            BadGateway => (S::BAD_GATEWAY, "bad_gateway"),
            StoreUnavailable(_) => (S::SERVICE_UNAVAILABLE, "store_unavailable"),
            Busy => (S::SERVICE_UNAVAILABLE, "busy"),
            NoHealthyUpstream => (S::SERVICE_UNAVAILABLE, "no_healthy_upstream"),
            UpstreamTimeout => (S::GATEWAY_TIMEOUT, "upstream_timeout"),
        }
    }

    /// The gRPC status code of this answer to a gRPC request, after gRPC's
    /// own HTTP mapping (doc/http-grpc-status-mapping.md), made finer where
    /// the gateway knows more than a status: a 400 is the client's argument
    /// (3, not 13), a 504 a deadline (4), a 429 or 413 exhaustion (8).
    pub(crate) fn grpc_code(&self) -> u8 {
        use ErrorReply::*;
        match self {
            NoRoute | MethodNotAllowed { .. } => 12,
            Internal(_) => 13,
            _ => match self.status().as_u16() {
                400 => 3,
                401 => 16,
                403 => 7,
                404 => 5,
                408 | 504 => 4,
                409 => 6,
                413 | 429 => 8,
                501 => 12,
                502 | 503 => 14,
                _ => 2,
            },
        }
    }

    /// HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// Stable snake_case code for clients to branch on.
    pub(crate) fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    /// Extra headers the answer must carry.
    pub(crate) fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            ErrorReply::InvalidToken(TokenRejection::Missing) | ErrorReply::UnknownUser => {
                vec![("WWW-Authenticate", "Bearer".into())]
            }
            ErrorReply::InvalidToken(_) => vec![(
                "WWW-Authenticate",
                format!("Bearer error=\"invalid_token\", error_description=\"{self}\""),
            )],
            ErrorReply::MethodNotAllowed { allow } => vec![("Allow", allow.to_string())],
            ErrorReply::TooManyAttempts { retry_after } => {
                vec![("Retry-After", retry_after.to_string())]
            }
            ErrorReply::Busy => vec![("Retry-After", "1".into())],
            _ => vec![],
        }
    }

    /// Whether the connection must close after the answer (the body was not
    /// read to its end, or where it ends is in doubt).
    pub(crate) fn closes_connection(&self) -> bool {
        matches!(
            self,
            ErrorReply::BodyTooLarge { .. }
                | ErrorReply::RequestTimeout
                | ErrorReply::Refused(EdgeRejection::Framing(_))
        )
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code(), "detail": self.to_string() })
    }

    /// Log the cause of an answer that has one (Redis failures are counted
    /// where they happen, by node): called once, where the answer is written,
    /// never where it is made.
    pub(crate) fn record(&self, request_id: &str) {
        match self {
            ErrorReply::Internal(cause) => {
                log::error!("request {request_id}: internal error: {cause}");
            }
            ErrorReply::StoreUnavailable(cause) => {
                log::warn!("request {request_id}: {cause}");
            }
            _ => {}
        }
    }
}
