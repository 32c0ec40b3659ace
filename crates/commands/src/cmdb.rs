//! The CMDB's commands: assets are created, changed, moved between sites,
//! tagged, taken through their lifecycle and retired, and related to each
//! other, each as a command with its execution and signed evidence
//! (psa.md: assets and relationships are domain state).

use std::collections::BTreeSet;

use anchor_auth::permissions::Permission;
use anchor_domain::{
    AssetId, AssetStatus, Day, Name, RelationshipId, RelationshipKind, SchemaKey, Serial, SiteId, Tag,
    asset::{check_attributes, merge_attributes},
    vocabulary::nullable,
};
use anchor_events::{Event, EventSpec};
use anchor_store::{
    StoreError, WorkspaceTx,
    cmdb::{Asset, AssetFields, Relationship},
    executions::Actor,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::{
    kit::{DomainCommand, Effect, Invalid, RefusalKind, Rejection},
    sites::{SITE_ARCHIVED, SITE_NOT_FOUND, check_site},
};

pub const ASSET_NOT_FOUND: RefusalKind =
    RefusalKind { code: "asset_not_found", status: 404, when: "the asset does not exist in this workspace" };
pub const ASSET_TYPE_UNKNOWN: RefusalKind =
    RefusalKind { code: "asset_type_unknown", status: 422, when: "no asset type has this key in this workspace" };
pub const ATTRIBUTES_INVALID: RefusalKind = RefusalKind {
    code: "asset_attributes_invalid",
    status: 422,
    when: "the attributes do not follow the asset type's fields (each problem named by its place)",
};
pub const ASSET_RETIRED: RefusalKind = RefusalKind {
    code: "asset_retired",
    status: 409,
    when: "the asset is retired or disposed: history, changed no more",
};
pub const STATUS_MOVE: RefusalKind = RefusalKind {
    code: "asset_status_invalid",
    status: 409,
    when: "the lifecycle does not allow this move from the asset's status",
};
pub const AGENT_LIVE: RefusalKind = RefusalKind {
    code: "asset_agent_live",
    status: 409,
    when: "the asset's agent still reports: revoke the agent before retiring its machine",
};
pub const TOO_MANY_TAGS: RefusalKind =
    RefusalKind { code: "asset_too_many_tags", status: 422, when: "an asset carries at most 20 tags" };
pub const RELATIONSHIP_EXISTS: RefusalKind =
    RefusalKind { code: "relationship_exists", status: 409, when: "the two assets are already related this way" };
pub const RELATIONSHIP_NOT_FOUND: RefusalKind = RefusalKind {
    code: "relationship_not_found",
    status: 404,
    when: "the relationship does not exist in this workspace",
};

/// The most tags an asset carries.
pub const MAX_TAGS: usize = 20;

/// Add an asset that has no agent (a switch, a printer, a licence); machines
/// with an agent get theirs when they enroll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"type": "network_device", "name": "Core switch", "site_id": "sit_01jd6m2h9x8k7v5t3r1p0n9q8w",
    "serial": "FOC1234X0AB", "purchased_on": "2024-03-01", "warranty_until": "2029-02-28",
    "attributes": {"device_kind": "switch", "ports": 48}, "tags": ["core"]}))]
pub struct AssetCreate {
    /// The asset type's key.
    #[serde(rename = "type")]
    pub type_key: SchemaKey,
    pub name: Name,
    /// `planned` (bought, not yet in service) or `active` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["planned", "active", null]))]
    pub status: Option<AssetStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<SiteId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<Serial>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchased_on: Option<Day>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warranty_until: Option<Day>,
    /// Values of the type's fields.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub tags: Vec<Tag>,
}

/// Change an asset: only the members given change; `null` clears a serial,
/// host name or date. `attributes` is merged: a key given `null` goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"asset_id": "ast_01jd6m2h9x8k7v5t3r1p0n9q8w", "name": "FS-01 (file server)",
    "attributes": {"memory_gb": 64, "rack": null}}))]
pub struct AssetUpdate {
    pub asset_id: AssetId,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_key: Option<SchemaKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub serial: Option<Option<Serial>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Option<Name>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub purchased_on: Option<Option<Day>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub warranty_until: Option<Option<Day>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
}

/// Move an asset to another site (`site_id: null`: to no site).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"asset_id": "ast_01jd6m2h9x8k7v5t3r1p0n9q8w", "site_id": "sit_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
pub struct AssetMove {
    pub asset_id: AssetId,
    pub site_id: Option<SiteId>,
}

/// Add and remove an asset's tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"asset_id": "ast_01jd6m2h9x8k7v5t3r1p0n9q8w", "add": ["backup-critical"], "remove": ["new"]}))]
pub struct AssetTag {
    pub asset_id: AssetId,
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub add: Vec<Tag>,
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub remove: Vec<Tag>,
}

/// Move an asset along its lifecycle: planned -> active, active <->
/// in_repair, any of them -> retired (a machine's agent revoked first),
/// retired -> disposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"asset_id": "ast_01jd6m2h9x8k7v5t3r1p0n9q8w", "status": "in_repair"}))]
pub struct AssetSetStatus {
    pub asset_id: AssetId,
    pub status: AssetStatus,
}

/// Retire an asset: out of service for good, kept for history. A machine's
/// agent is revoked first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"asset_id": "ast_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
pub struct AssetRetire {
    pub asset_id: AssetId,
}

/// Relate two assets: `asset_id kind target_id` ("vm-01 runs_on host-02").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"asset_id": "ast_01jd6m2h9x8k7v5t3r1p0n9q8w", "kind": "runs_on",
    "target_id": "ast_01jd6m2h9x8k7v5t3r1p0n9q8x"}))]
pub struct AssetRelate {
    pub asset_id: AssetId,
    pub kind: RelationshipKind,
    pub target_id: AssetId,
}

/// Remove a relationship between two assets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"relationship_id": "rel_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
pub struct AssetUnrelate {
    pub relationship_id: RelationshipId,
}

macro_rules! asset_events {
    ($($ty:ident { $($field:ident: $row:ty, $doc:literal),+ } = $name:literal, $when:literal;)+) => {$(
        #[doc = concat!("`", $name, "`.")]
        #[derive(Debug, Serialize, JsonSchema)]
        pub struct $ty {
            $(#[doc = $doc] pub $field: $row,)+
            pub execution_id: anchor_domain::ExecutionId,
        }

        impl Event for $ty {
            const TYPE: &'static str = $name;
            const WHEN: &'static str = $when;
        }
    )+};
}

asset_events!(
    AssetCreated { asset: Asset, "The asset as `GET .../assets/{id}` shows it" } = "asset.created",
        "An asset was added by hand.";
    AssetUpdated { asset: Asset, "The asset as `GET .../assets/{id}` shows it after the change" } = "asset.updated",
        "An asset's type, name, serial, dates, attributes or tags changed.";
    AssetMoved { asset: Asset, "The asset after the move", from_site_id: Option<SiteId>, "The site it left" } =
        "asset.moved", "An asset moved to another site.";
    AssetStatusChanged { asset: Asset, "The asset in its new status", from: AssetStatus, "Its status before" } =
        "asset.status_changed", "An asset went into service, into repair, back, or was disposed of.";
    AssetRetired { asset: Asset, "The asset, with `retired_at`" } = "asset.retired",
        "An asset was retired: out of service for good.";
    AssetRelated { relationship: Relationship, "The new relationship, both ends named" } = "asset.related",
        "Two assets were related.";
    AssetUnrelated { relationship: Relationship, "The relationship as it was" } = "asset.unrelated",
        "A relationship between two assets was removed.";
);

/// What an asset command did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AssetRef {
    pub asset_id: AssetId,
    /// Whether anything changed (a change to what already is changes nothing).
    pub changed: bool,
}

/// What a relationship command did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RelationshipRef {
    pub relationship_id: RelationshipId,
}

/// The asset; locked when `lock`.
async fn found(tx: &mut WorkspaceTx, id: AssetId, lock: bool) -> Result<Asset, Rejection> {
    let asset = if lock { tx.lock_asset(id).await? } else { tx.asset(id).await? };
    asset.ok_or_else(|| ASSET_NOT_FOUND.because(format!("no asset {id} in this workspace")).into())
}

/// The asset, if it is not history yet; locked when `lock`.
async fn current(tx: &mut WorkspaceTx, id: AssetId, lock: bool) -> Result<Asset, Rejection> {
    let asset = found(tx, id, lock).await?;
    if asset.status.is_history() {
        return Err(ASSET_RETIRED.because(format!("asset {id} ({}) is {}", asset.name, asset.status)).into());
    }
    Ok(asset)
}

/// Checks attributes against the fields of the type `key`.
async fn check_typed(tx: &mut WorkspaceTx, key: &SchemaKey, attributes: &Map<String, Value>) -> Result<(), Rejection> {
    let Some(kind) = tx.asset_type(key).await? else {
        return Err(ASSET_TYPE_UNKNOWN.because(format!("no asset type {key} in this workspace")).into());
    };
    check_attributes(&kind.fields, attributes).map_err(|errors| {
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        ATTRIBUTES_INVALID.because(format!("{} attributes: {}", kind.name, listed.join("; "))).into()
    })
}

fn dates_in_order(purchased: Option<Day>, warranty: Option<Day>, path: &'static str) -> Result<(), Invalid> {
    match (purchased, warranty) {
        (Some(p), Some(w)) if w < p => {
            Err(Invalid::at(path, format!("the warranty ends ({w}) before the purchase ({p})")))
        }
        _ => Ok(()),
    }
}

fn tag_strings(tags: &[Tag]) -> Vec<String> {
    tags.iter().map(|t| t.as_str().to_owned()).collect::<BTreeSet<_>>().into_iter().collect()
}

impl DomainCommand for AssetCreate {
    const NAME: &'static str = "asset.create";
    const SKILL: &'static str = "asset_create";
    const PERMISSION: Permission = Permission::AssetsWrite;
    const SUMMARY: &'static str = "Add an asset (a device, a licence, anything without an agent)";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&ASSET_TYPE_UNKNOWN, &ATTRIBUTES_INVALID, &SITE_NOT_FOUND, &SITE_ARCHIVED, &TOO_MANY_TAGS];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<AssetCreated>()];
    type Output = AssetRef;

    fn validate(&self) -> Result<(), Invalid> {
        if let Some(status) = self.status
            && !matches!(status, AssetStatus::Planned | AssetStatus::Active)
        {
            return Err(Invalid::at("/status", format!("a new asset is planned or active, not {status}")));
        }
        if self.tags.len() > MAX_TAGS {
            return Err(Invalid::at("/tags", format!("at most {MAX_TAGS} tags")));
        }
        dates_in_order(self.purchased_on, self.warranty_until, "/warranty_until")
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        check_typed(tx, &self.type_key, &self.attributes).await?;
        check_site(tx, self.site_id).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<AssetRef, Rejection> {
        self.check(effect.tx, effect.actor).await?;
        let fields = AssetFields {
            type_key: &self.type_key,
            name: &self.name,
            status: self.status.unwrap_or(AssetStatus::Active),
            serial: self.serial.as_ref(),
            hostname: self.hostname.as_ref().map_or("", Name::as_str),
            purchased_on: self.purchased_on,
            warranty_until: self.warranty_until,
            attributes: &self.attributes,
        };
        let id = AssetId::new();
        let asset = effect.tx.create_asset(id, &fields, self.site_id, &tag_strings(&self.tags)).await?;
        effect.publish(&AssetCreated { asset, execution_id: effect.execution }).await?;
        Ok(AssetRef { asset_id: id, changed: true })
    }
}

/// The asset's fields after an update, owned.
struct Updated {
    type_key: SchemaKey,
    name: Name,
    serial: Option<Serial>,
    hostname: String,
    purchased_on: Option<Day>,
    warranty_until: Option<Day>,
    attributes: Map<String, Value>,
}

impl AssetUpdate {
    fn merged(&self, now: &Asset) -> Updated {
        Updated {
            type_key: self.type_key.clone().unwrap_or_else(|| now.type_key.clone()),
            name: self.name.clone().unwrap_or_else(|| now.name.clone()),
            serial: self.serial.clone().unwrap_or_else(|| now.serial.clone()),
            hostname: match &self.hostname {
                Some(h) => h.as_ref().map_or_else(String::new, |h| h.as_str().to_owned()),
                None => now.hostname.clone(),
            },
            purchased_on: self.purchased_on.unwrap_or(now.purchased_on),
            warranty_until: self.warranty_until.unwrap_or(now.warranty_until),
            attributes: self
                .attributes
                .as_ref()
                .map_or_else(|| now.attributes.0.clone(), |p| merge_attributes(&now.attributes, p)),
        }
    }

    async fn checked(&self, tx: &mut WorkspaceTx, now: &Asset) -> Result<Updated, Rejection> {
        let next = self.merged(now);
        if let Err(e) = dates_in_order(next.purchased_on, next.warranty_until, "/warranty_until") {
            return Err(ATTRIBUTES_INVALID.because(format!("{}: {}", e.path, e.message)).into());
        }
        // Attributes are checked when they or the type change: a field added
        // to the type later does not make an untouched asset unchangeable.
        if self.attributes.is_some() || self.type_key.is_some() {
            check_typed(tx, &next.type_key, &next.attributes).await?;
        }
        Ok(next)
    }
}

impl DomainCommand for AssetUpdate {
    const NAME: &'static str = "asset.update";
    const SKILL: &'static str = "asset_update";
    const PERMISSION: Permission = Permission::AssetsWrite;
    const SUMMARY: &'static str = "Change an asset's type, name, serial, dates or attributes";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&ASSET_NOT_FOUND, &ASSET_RETIRED, &ASSET_TYPE_UNKNOWN, &ATTRIBUTES_INVALID];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<AssetUpdated>()];
    type Output = AssetRef;

    fn validate(&self) -> Result<(), Invalid> {
        match (self.purchased_on, self.warranty_until) {
            (Some(p), Some(w)) => dates_in_order(p, w, "/warranty_until"),
            _ => Ok(()),
        }
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let now = current(tx, self.asset_id, false).await?;
        self.checked(tx, &now).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<AssetRef, Rejection> {
        let now = current(effect.tx, self.asset_id, true).await?;
        let next = self.checked(effect.tx, &now).await?;
        let fields = AssetFields {
            type_key: &next.type_key,
            name: &next.name,
            status: now.status,
            serial: next.serial.as_ref(),
            hostname: &next.hostname,
            purchased_on: next.purchased_on,
            warranty_until: next.warranty_until,
            attributes: &next.attributes,
        };
        if fields == now.fields() {
            return Ok(AssetRef { asset_id: self.asset_id, changed: false });
        }
        let asset = effect.tx.update_asset(self.asset_id, &fields).await?;
        effect.publish(&AssetUpdated { asset, execution_id: effect.execution }).await?;
        Ok(AssetRef { asset_id: self.asset_id, changed: true })
    }
}

impl DomainCommand for AssetMove {
    const NAME: &'static str = "asset.move";
    const SKILL: &'static str = "asset_move";
    const PERMISSION: Permission = Permission::AssetsWrite;
    const SUMMARY: &'static str = "Move an asset to another site";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&ASSET_NOT_FOUND, &ASSET_RETIRED, &SITE_NOT_FOUND, &SITE_ARCHIVED];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<AssetMoved>()];
    type Output = AssetRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        current(tx, self.asset_id, false).await?;
        check_site(tx, self.site_id).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<AssetRef, Rejection> {
        let now = current(effect.tx, self.asset_id, true).await?;
        if now.site_id == self.site_id {
            return Ok(AssetRef { asset_id: self.asset_id, changed: false });
        }
        check_site(effect.tx, self.site_id).await?;
        let asset = effect.tx.move_asset(self.asset_id, self.site_id).await?;
        effect.publish(&AssetMoved { asset, from_site_id: now.site_id, execution_id: effect.execution }).await?;
        Ok(AssetRef { asset_id: self.asset_id, changed: true })
    }
}

impl DomainCommand for AssetTag {
    const NAME: &'static str = "asset.tag";
    const SKILL: &'static str = "asset_tag";
    const PERMISSION: Permission = Permission::AssetsWrite;
    const SUMMARY: &'static str = "Add and remove an asset's tags";
    const REFUSALS: &'static [&'static RefusalKind] = &[&ASSET_NOT_FOUND, &ASSET_RETIRED, &TOO_MANY_TAGS];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<AssetUpdated>()];
    type Output = AssetRef;

    fn validate(&self) -> Result<(), Invalid> {
        if self.add.len() > MAX_TAGS {
            return Err(Invalid::at("/add", format!("at most {MAX_TAGS} tags")));
        }
        if self.remove.len() > MAX_TAGS {
            return Err(Invalid::at("/remove", format!("at most {MAX_TAGS} tags")));
        }
        Ok(())
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let now = current(tx, self.asset_id, false).await?;
        self.tags(&now).map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<AssetRef, Rejection> {
        let now = current(effect.tx, self.asset_id, true).await?;
        let tags = self.tags(&now)?;
        if tags == now.tags {
            return Ok(AssetRef { asset_id: self.asset_id, changed: false });
        }
        let asset = effect.tx.tag_asset(self.asset_id, &tags).await?;
        effect.publish(&AssetUpdated { asset, execution_id: effect.execution }).await?;
        Ok(AssetRef { asset_id: self.asset_id, changed: true })
    }
}

impl AssetTag {
    /// The asset's tags after the change, sorted.
    fn tags(&self, now: &Asset) -> Result<Vec<String>, Rejection> {
        let mut tags: BTreeSet<String> = now.tags.iter().cloned().collect();
        tags.extend(self.add.iter().map(|t| t.as_str().to_owned()));
        for tag in &self.remove {
            tags.remove(tag.as_str());
        }
        if tags.len() > MAX_TAGS {
            return Err(TOO_MANY_TAGS
                .because(format!("{} would carry {} tags; at most {MAX_TAGS}", now.name, tags.len()))
                .into());
        }
        Ok(tags.into_iter().collect())
    }
}

impl DomainCommand for AssetSetStatus {
    const NAME: &'static str = "asset.set_status";
    const SKILL: &'static str = "asset_set_status";
    const PERMISSION: Permission = Permission::AssetsWrite;
    const SUMMARY: &'static str = "Move an asset along its lifecycle (into service, repair, retirement, disposal)";
    const REFUSALS: &'static [&'static RefusalKind] = &[&ASSET_NOT_FOUND, &STATUS_MOVE, &AGENT_LIVE];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<AssetStatusChanged>(), EventSpec::of::<AssetRetired>()];
    type Output = AssetRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let now = found(tx, self.asset_id, false).await?;
        moved(&now, self.status)?;
        if self.status == AssetStatus::Retired {
            agent_revoked(tx, &now).await?;
        }
        Ok(())
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<AssetRef, Rejection> {
        set_status(effect, self.asset_id, self.status).await
    }
}

/// Moves the asset to `status` under its lock, if the lifecycle allows it
/// (a machine retires once its agent is revoked); staying put changes
/// nothing.
async fn set_status(effect: &mut Effect<'_>, id: AssetId, status: AssetStatus) -> Result<AssetRef, Rejection> {
    let now = found(effect.tx, id, true).await?;
    if now.status == status {
        return Ok(AssetRef { asset_id: id, changed: false });
    }
    moved(&now, status)?;
    if status == AssetStatus::Retired {
        agent_revoked(effect.tx, &now).await?;
    }
    let asset = effect.tx.set_asset_status(id, status).await?;
    if status == AssetStatus::Retired {
        effect.publish(&AssetRetired { asset, execution_id: effect.execution }).await?;
    } else {
        effect.publish(&AssetStatusChanged { asset, from: now.status, execution_id: effect.execution }).await?;
    }
    Ok(AssetRef { asset_id: id, changed: true })
}

/// The lifecycle's verdict on a move; staying put is no move and succeeds.
fn moved(now: &Asset, to: AssetStatus) -> Result<AssetStatus, Rejection> {
    if now.status == to {
        return Ok(to);
    }
    now.status.transition(to).map_err(|e| STATUS_MOVE.because(format!("{}: {e}", now.name)).into())
}

/// Refuses to retire a machine whose agent still reports.
async fn agent_revoked(tx: &mut WorkspaceTx, asset: &Asset) -> Result<(), Rejection> {
    let Some(agent) = asset.agent_id else { return Ok(()) };
    if tx.agent_revoked(agent).await? == Some(false) {
        return Err(AGENT_LIVE
            .because(format!("{} reports through agent {agent}: revoke the agent first", asset.name))
            .into());
    }
    Ok(())
}

impl DomainCommand for AssetRetire {
    const NAME: &'static str = "asset.retire";
    const SKILL: &'static str = "asset_retire";
    const PERMISSION: Permission = Permission::AssetsWrite;
    const SUMMARY: &'static str = "Retire an asset (out of service for good, kept for history)";
    const REFUSALS: &'static [&'static RefusalKind] = &[&ASSET_NOT_FOUND, &STATUS_MOVE, &AGENT_LIVE];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<AssetRetired>()];
    type Output = AssetRef;

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        AssetSetStatus { asset_id: self.asset_id, status: AssetStatus::Retired }.check(tx, actor).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<AssetRef, Rejection> {
        set_status(effect, self.asset_id, AssetStatus::Retired).await
    }
}

impl AssetRelate {
    async fn checked(&self, tx: &mut WorkspaceTx) -> Result<(), Rejection> {
        current(tx, self.asset_id, false).await?;
        current(tx, self.target_id, false).await?;
        if let Some(existing) = tx.relationship_between(self.asset_id, self.kind, self.target_id).await? {
            return Err(exists(existing, self));
        }
        Ok(())
    }
}

fn exists(existing: impl std::fmt::Display, relate: &AssetRelate) -> Rejection {
    RELATIONSHIP_EXISTS
        .because(format!("{} {} {} already ({existing})", relate.asset_id, relate.kind, relate.target_id))
        .into()
}

impl DomainCommand for AssetRelate {
    const NAME: &'static str = "asset.relate";
    const SKILL: &'static str = "asset_relate";
    const PERMISSION: Permission = Permission::AssetsWrite;
    const SUMMARY: &'static str = "Relate two assets (runs_on, depends_on, connected_to, backs_up, installed_on)";
    const REFUSALS: &'static [&'static RefusalKind] = &[&ASSET_NOT_FOUND, &ASSET_RETIRED, &RELATIONSHIP_EXISTS];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<AssetRelated>()];
    type Output = RelationshipRef;

    fn validate(&self) -> Result<(), Invalid> {
        if self.asset_id == self.target_id {
            return Err(Invalid::at("/target_id", "an asset cannot be related to itself"));
        }
        Ok(())
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        self.checked(tx).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<RelationshipRef, Rejection> {
        self.checked(effect.tx).await?;
        let relationship = effect
            .tx
            .insert_relationship(self.asset_id, self.kind, self.target_id, effect.execution)
            .await
            .map_err(|e| duplicate(e, self))?;
        let relationship_id = relationship.id;
        effect.publish(&AssetRelated { relationship, execution_id: effect.execution }).await?;
        Ok(RelationshipRef { relationship_id })
    }
}

/// A racing twin made the same relationship first: the same refusal as if
/// it had been seen before.
fn duplicate(e: StoreError, relate: &AssetRelate) -> Rejection {
    if e.sqlstate().as_deref() == Some("23505") { exists("made a moment ago", relate) } else { e.into() }
}

impl DomainCommand for AssetUnrelate {
    const NAME: &'static str = "asset.unrelate";
    const SKILL: &'static str = "asset_unrelate";
    const PERMISSION: Permission = Permission::AssetsWrite;
    const SUMMARY: &'static str = "Remove a relationship between two assets";
    const REFUSALS: &'static [&'static RefusalKind] = &[&RELATIONSHIP_NOT_FOUND];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<AssetUnrelated>()];
    type Output = RelationshipRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        match tx.relationship(self.relationship_id).await? {
            Some(_) => Ok(()),
            None => Err(not_related(self.relationship_id)),
        }
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<RelationshipRef, Rejection> {
        let Some(relationship) = effect.tx.delete_relationship(self.relationship_id).await? else {
            return Err(not_related(self.relationship_id));
        };
        effect.publish(&AssetUnrelated { relationship, execution_id: effect.execution }).await?;
        Ok(RelationshipRef { relationship_id: self.relationship_id })
    }
}

fn not_related(id: RelationshipId) -> Rejection {
    RELATIONSHIP_NOT_FOUND.because(format!("no relationship {id} in this workspace")).into()
}
