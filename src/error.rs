//! Every failure the gateway answers itself, and the one place that maps each to a status, a code and a sentence.

use crate::edge::EdgeRejection;
use http::StatusCode;

/// Why an access token was refused; also a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a JWT, or claims of the wrong shape.
    Malformed,
    /// Signed with another key.
    BadSignature,
    /// Signed with another algorithm (or `none`).
    WrongAlgorithm,
    /// Past `exp`.
    Expired,
}

impl TokenRejection {
    /// Stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRejection::Missing => "missing",
            TokenRejection::Malformed => "malformed",
            TokenRejection::BadSignature => "bad_signature",
            TokenRejection::WrongAlgorithm => "wrong_algorithm",
            TokenRejection::Expired => "expired",
        }
    }
}

/// A failure answered by the gateway with a JSON `{"error","detail"}` body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or not an object.
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
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
    /// The route table has no match.
    #[error("no route for this path")]
    NoRoute,
    /// Wrong method on an auth endpoint.
    #[error("method not allowed; use {allow}")]
    MethodNotAllowed {
        /// Value of the `Allow` header.
        allow: &'static str,
    },
    /// Auth request body over the cap.
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap.
        limit: usize,
    },
    /// Redis cannot be reached or did not answer in time.
    #[error("the session store is unavailable, try again shortly")]
    StoreUnavailable,
    /// Every hashing slot stayed busy past the queue timeout.
    #[error("the server is busy, try again shortly")]
    Busy,
    /// The chosen upstream could not be reached or failed mid-request.
    #[error("the upstream service could not be reached")]
    BadGateway,
    /// No healthy peer in the upstream cluster.
    #[error("no healthy upstream peer is available")]
    NoHealthyUpstream,
    /// The upstream did not answer in time.
    #[error("the upstream service did not answer in time")]
    UpstreamTimeout,
    /// A bug on our side; details go to the log, never to the client.
    #[error("internal error")]
    Internal,
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

impl ApiError {
    /// An invalid field with the reason.
    pub fn invalid_field(field: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::InvalidField {
            field,
            reason: reason.into(),
        }
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            MalformedRequest
            | Refused(_)
            | MalformedJson(_)
            | MissingField(_)
            | InvalidField { .. } => StatusCode::BAD_REQUEST,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            InvalidCredentials | InvalidToken(_) | InvalidRefreshToken | UnknownUser => {
                StatusCode::UNAUTHORIZED
            }
            EmailTaken => StatusCode::CONFLICT,
            NoRoute => StatusCode::NOT_FOUND,
            MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            StoreUnavailable | Busy | NoHealthyUpstream => StatusCode::SERVICE_UNAVAILABLE,
            BadGateway => StatusCode::BAD_GATEWAY,
            UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable snake_case code for clients to branch on.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            MalformedRequest => "bad_request",
            Refused(EdgeRejection::Path(_)) => "invalid_path",
            Refused(EdgeRejection::Host(_)) => "invalid_host",
            Refused(EdgeRejection::UnderscoreHeader) => "invalid_header",
            Refused(EdgeRejection::AmbiguousAuthorization) => "invalid_authorization",
            RequestTimeout => "request_timeout",
            MalformedJson(_) => "malformed_json",
            MissingField(_) => "missing_field",
            InvalidField { .. } => "invalid_field",
            InvalidCredentials => "invalid_credentials",
            InvalidToken(TokenRejection::Missing) => "missing_token",
            InvalidToken(TokenRejection::Expired) => "token_expired",
            InvalidToken(_) => "invalid_token",
            InvalidRefreshToken => "invalid_refresh_token",
            UnknownUser => "unknown_user",
            EmailTaken => "email_taken",
            NoRoute => "not_found",
            MethodNotAllowed { .. } => "method_not_allowed",
            BodyTooLarge { .. } => "body_too_large",
            StoreUnavailable => "store_unavailable",
            Busy => "busy",
            BadGateway => "bad_gateway",
            NoHealthyUpstream => "no_healthy_upstream",
            UpstreamTimeout => "upstream_timeout",
            Internal => "internal_error",
        }
    }

    /// Extra headers the answer must carry.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            ApiError::InvalidToken(TokenRejection::Missing) | ApiError::UnknownUser => {
                vec![("WWW-Authenticate", "Bearer".into())]
            }
            ApiError::InvalidToken(_) => vec![(
                "WWW-Authenticate",
                format!("Bearer error=\"invalid_token\", error_description=\"{self}\""),
            )],
            ApiError::MethodNotAllowed { allow } => vec![("Allow", (*allow).into())],
            _ => vec![],
        }
    }

    /// Whether the connection must close after the answer (the body was not read to its end).
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            ApiError::BodyTooLarge { .. } | ApiError::RequestTimeout
        )
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code(), "detail": self.to_string() })
    }
}
