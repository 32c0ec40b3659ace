//! The command kit: a domain command is declared once, as a type.
//!
//! A [`DomainCommand`] names itself, the skill that performs it and the
//! permission it needs; its arguments are the type's fields (deserialised,
//! so parsed into domain types; described by their JSON Schema); it checks
//! the workspace before it is accepted ([`DomainCommand::check`]) and applies
//! its effect in the skill's unit of work ([`DomainCommand::apply`]); it
//! refuses with typed [`Refusal`]s that carry their problem code and status,
//! and lists the events it publishes. [`Spec::of`] turns the type into the
//! values the rest of Anchor works from: the registry
//! ([`crate::registry::COMMANDS`]) is a list of specs, and from it come the
//! gateway's parsing and routes, the agent node's skill catalogue and
//! dispatch, and the documentation.

use std::{any::Any, fmt, future::Future, sync::Arc};

use anchor_auth::permissions::Permission;
use anchor_domain::ExecutionId;
use anchor_events::{Event, EventSpec};
use anchor_store::{StoreError, WorkspaceTx, executions::Actor};
use futures_util::future::BoxFuture;
use schemars::{JsonSchema, Schema, generate::SchemaSettings};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

/// A domain command. See the module documentation.
pub trait DomainCommand:
    Serialize + DeserializeOwned + JsonSchema + fmt::Debug + Clone + Send + Sync + 'static
{
    /// `entity.verb`, e.g. `ticket.create`.
    const NAME: &'static str;
    /// The agent node skill that performs it, e.g. `ticket_create`.
    const SKILL: &'static str;
    /// What the actor must be allowed to do, checked when the command is
    /// accepted and again when its skill acts.
    const PERMISSION: Permission;
    /// One line for people: the API summary and the skill's description.
    const SUMMARY: &'static str;
    /// Skill catalogue tags besides `command` and the entity.
    const TAGS: &'static [&'static str] = &[];
    /// The refusals it may answer with (besides [`FORBIDDEN`]).
    const REFUSALS: &'static [&'static RefusalKind] = &[];
    /// The domain events it publishes.
    const EVENTS: &'static [EventSpec] = &[];

    /// What a success returns: the execution's `result`.
    type Output: Serialize + JsonSchema;

    /// Rules across its arguments that their types cannot state (an end
    /// after its start), checked as the arguments are parsed: a breach is
    /// refused like a malformed member, naming where (a JSON Pointer).
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }

    /// Checks the command against the workspace as it is now, before it is
    /// accepted: a command that cannot succeed is refused at once (with its
    /// status) instead of becoming a failed execution. [`Self::apply`]
    /// decides again under its locks.
    fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> impl Future<Output = Result<(), Rejection>> + Send {
        let _ = (tx, actor);
        async { Ok(()) }
    }

    /// Applies the effect and publishes its events, in the skill's unit of
    /// work (which also records the effect, once per execution).
    fn apply(&self, effect: &mut Effect<'_>) -> impl Future<Output = Result<Self::Output, Rejection>> + Send;
}

/// A kind of refusal: its stable code, the HTTP status it answers with, and
/// when it happens (for the documentation).
#[derive(Debug, PartialEq, Eq)]
pub struct RefusalKind {
    pub code: &'static str,
    pub status: u16,
    pub when: &'static str,
}

impl RefusalKind {
    /// This refusal, with a message for people.
    pub fn because(&'static self, message: impl Into<String>) -> Refusal {
        Refusal { code: self.code.to_owned(), status: self.status, message: message.into() }
    }
}

/// The actor does not hold the command's permission (any more).
pub const FORBIDDEN: RefusalKind =
    RefusalKind { code: "forbidden", status: 403, when: "the actor does not hold the command's permission" };

/// Why a command was not carried out: recorded as the execution's `error`
/// (`{code, message, status}`) and answered with its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: String,
    pub message: String,
    pub status: u16,
}

impl Refusal {
    /// A refusal as recorded. Records written before refusals carried their
    /// status get the status of the registered kind with the same code.
    pub fn from_record(record: &Value) -> Self {
        let code = record["code"].as_str().unwrap_or("refused").to_owned();
        let status = record["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .or_else(|| crate::registry::refusal_kind(&code).map(|k| k.status))
            .unwrap_or(422);
        Self { message: record["message"].as_str().unwrap_or_default().to_owned(), code, status }
    }

    pub fn to_record(&self) -> Value {
        serde_json::to_value(self).expect("a refusal serialises")
    }
}

/// How a check or an effect ended without success.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an effect works with: the skill's unit of work, who asked, and the
/// execution it performs.
#[derive(Debug)]
pub struct Effect<'a> {
    pub tx: &'a mut WorkspaceTx,
    pub actor: &'a Actor,
    pub execution: ExecutionId,
}

impl Effect<'_> {
    /// Publishes `event` through the outbox, with the effect.
    pub async fn publish<E: Event>(&mut self, event: &E) -> Result<(), StoreError> {
        anchor_events::publish(self.tx, event).await.map(drop)
    }
}

/// Why arguments that parsed break a rule across members: where (a JSON
/// Pointer, e.g. `/ended_at`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub path: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn at(path: &'static str, message: impl Into<String>) -> Self {
        Self { path, message: message.into() }
    }
}

/// Why a command's arguments were refused: where (a JSON Pointer) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid arguments for {command}: {path}: {message}")]
pub struct ArgsError {
    pub command: String,
    /// JSON Pointer (RFC 6901) to the offending member, "" for the whole.
    pub path: String,
    pub message: String,
}

/// Everything Anchor needs to know about one command type, as values.
#[derive(Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub skill: &'static str,
    pub permission: Permission,
    pub summary: &'static str,
    pub tags: &'static [&'static str],
    pub refusals: &'static [&'static RefusalKind],
    pub events: &'static [EventSpec],
    parse: fn(Value) -> Result<Command, ArgsError>,
    args_schema: fn() -> Schema,
    output_schema: fn() -> Schema,
}

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spec").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A self-contained JSON Schema (draft 2020-12, no references) of `T`.
pub fn schema_of<T: JsonSchema>() -> Schema {
    let settings = SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    let mut schema = settings.into_generator().into_root_schema_for::<T>();
    schema.remove("title");
    schema
}

fn parse_as<C: DomainCommand>(args: Value) -> Result<Command, ArgsError> {
    let command = serde_path_to_error::deserialize::<_, C>(args).map_err(|e| ArgsError {
        command: C::NAME.to_owned(),
        path: json_pointer(&e.path().to_string()),
        message: e.inner().to_string(),
    })?;
    command.validate().map_err(|Invalid { path, message }| ArgsError {
        command: C::NAME.to_owned(),
        path: path.to_owned(),
        message,
    })?;
    Ok(Command::new(command))
}

/// `items[0].name` (serde's path to a member, as `serde_path_to_error` and
/// axum's JSON rejections give it) -> `/items/0/name` (RFC 6901).
pub fn json_pointer(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    let mut out = String::new();
    for segment in path.split('.') {
        let (name, indexes) = segment.split_once('[').map_or((segment, ""), |(n, rest)| (n, rest));
        if !name.is_empty() {
            out.push('/');
            out.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            out.push('/');
            out.push_str(index.trim_end_matches(']'));
        }
    }
    out
}

impl Spec {
    pub const fn of<C: DomainCommand>() -> Self {
        Self {
            name: C::NAME,
            skill: C::SKILL,
            permission: C::PERMISSION,
            summary: C::SUMMARY,
            tags: C::TAGS,
            refusals: C::REFUSALS,
            events: C::EVENTS,
            parse: parse_as::<C>,
            args_schema: schema_of::<C>,
            output_schema: schema_of::<C::Output>,
        }
    }

    /// Parses the command's arguments.
    pub fn parse(&self, args: Value) -> Result<Command, ArgsError> {
        (self.parse)(args)
    }

    /// The JSON Schema of the arguments.
    pub fn args_schema(&self) -> Schema {
        (self.args_schema)()
    }

    /// The JSON Schema of a success's result.
    pub fn output_schema(&self) -> Schema {
        (self.output_schema)()
    }
}

/// The type-erased face of a [`DomainCommand`].
trait Erased: fmt::Debug + Send + Sync {
    fn args(&self) -> Value;
    fn check<'a>(&'a self, tx: &'a mut WorkspaceTx, actor: &'a Actor) -> BoxFuture<'a, Result<(), Rejection>>;
    fn apply<'a, 'b>(&'a self, effect: &'a mut Effect<'b>) -> BoxFuture<'a, Result<Value, Rejection>>
    where
        'b: 'a;
    fn as_any(&self) -> &dyn Any;
}

impl<C: DomainCommand> Erased for C {
    fn args(&self) -> Value {
        serde_json::to_value(self).expect("command arguments serialise")
    }

    fn check<'a>(&'a self, tx: &'a mut WorkspaceTx, actor: &'a Actor) -> BoxFuture<'a, Result<(), Rejection>> {
        Box::pin(DomainCommand::check(self, tx, actor))
    }

    fn apply<'a, 'b>(&'a self, effect: &'a mut Effect<'b>) -> BoxFuture<'a, Result<Value, Rejection>>
    where
        'b: 'a,
    {
        Box::pin(async move {
            let output = DomainCommand::apply(self, effect).await?;
            Ok(serde_json::to_value(output).expect("command output serialises"))
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A domain command with its arguments, whichever its type.
#[derive(Clone)]
pub struct Command {
    spec: Spec,
    inner: Arc<dyn Erased>,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl PartialEq for Command {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.args() == other.args()
    }
}

impl Command {
    pub fn new<C: DomainCommand>(command: C) -> Self {
        Self { spec: Spec::of::<C>(), inner: Arc::new(command) }
    }

    /// Parses a registered command from its name and JSON arguments.
    pub fn parse(name: &str, args: Value) -> Result<Self, ArgsError> {
        let spec = crate::registry::find(name).ok_or_else(|| ArgsError {
            command: name.chars().take(64).collect(),
            path: String::new(),
            message: format!("unknown command {name:?}"),
        })?;
        spec.parse(args)
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// `ticket.create`, ...
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The agent node skill that performs it.
    pub fn skill(&self) -> &'static str {
        self.spec.skill
    }

    /// What the actor must be allowed to do.
    pub fn permission(&self) -> Permission {
        self.spec.permission
    }

    /// The arguments as JSON (what the execution's `input` shows).
    pub fn args(&self) -> Value {
        self.inner.args()
    }

    /// The command as its own type, if it is a `C`.
    pub fn downcast<C: DomainCommand>(&self) -> Option<&C> {
        self.inner.as_any().downcast_ref()
    }

    /// See [`DomainCommand::check`].
    pub async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        self.inner.check(tx, actor).await
    }

    /// See [`DomainCommand::apply`]; the output as JSON.
    pub async fn apply(&self, effect: &mut Effect<'_>) -> Result<Value, Rejection> {
        self.inner.apply(effect).await
    }
}
