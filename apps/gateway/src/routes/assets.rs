//! The CMDB: asset types (configuration: written directly by those who
//! manage the workspace's settings, each write recorded with its signed
//! credential), assets and their relationships (commands answered 202 with
//! an execution), the asset list with each asset's agent and what is open
//! on it, and the impact view ("what breaks if this switch dies").

use anchor_commands::cmdb::{
    AssetCreate, AssetMove, AssetRelate, AssetRetire, AssetSetStatus, AssetTag, AssetUnrelate, AssetUpdate,
};
use anchor_domain::{
    AssetId, AssetStatus, SchemaKey, SiteId, Tag,
    asset::{AssetTypeInput, check_fields},
};
use anchor_store::{
    cmdb::{AssetFilter, AssetRow, AssetType, Impact, Relationship},
    sites::ByName,
};
use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    changes,
    json::ApiJson,
    pagination::{ApiQuery, Page, PageParams, Paging},
    path::{ObjectId, not_found},
    problem::{FieldError, Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    const ASSET: &str = "asset";
    ApiRoutes::new()
        .routes(routes!(list_asset_types))
        .routes(routes!(get_asset_type, put_asset_type, delete_asset_type))
        .routes(routes!(list_assets))
        .routes(routes!(get_asset))
        .routes(routes!(list_relationships))
        .routes(routes!(get_impact))
        .command::<AssetCreate>("/api/v1/workspaces/{ws}/assets")
        .change_on::<AssetUpdate>("/api/v1/workspaces/{ws}/assets/{id}", "asset_id", ASSET)
        .command_on::<AssetMove>("/api/v1/workspaces/{ws}/assets/{id}/move", "asset_id", ASSET)
        .command_on::<AssetTag>("/api/v1/workspaces/{ws}/assets/{id}/tags", "asset_id", ASSET)
        .command_on::<AssetSetStatus>("/api/v1/workspaces/{ws}/assets/{id}/status", "asset_id", ASSET)
        .command_on::<AssetRetire>("/api/v1/workspaces/{ws}/assets/{id}/retire", "asset_id", ASSET)
        .command_on::<AssetRelate>("/api/v1/workspaces/{ws}/assets/{id}/relationships", "asset_id", ASSET)
        .command_on::<AssetUnrelate>(
            "/api/v1/workspaces/{ws}/relationships/{id}/remove",
            "relationship_id",
            "relationship",
        )
}

/// Every asset type, by name, with its fields and count of assets.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/asset-types", tag = "assets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<AssetType>)))]
pub(crate) async fn list_asset_types(
    scope: WorkspaceScope<perm::AssetsRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<AssetType>>, Problem> {
    let types = state.db.read(&scope.workspace, |tx| Box::pin(tx.asset_types())).await?;
    Ok(Json(Page { items: types, next_cursor: None }))
}

/// An asset type.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/asset-types/{id}", tag = "assets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Asset type key")),
    responses((status = 200, body = AssetType)))]
pub(crate) async fn get_asset_type(
    scope: WorkspaceScope<perm::AssetsRead>,
    State(state): State<AppState>,
    ObjectId(key): ObjectId<SchemaKey>,
) -> Result<Json<AssetType>, Problem> {
    let found = state.db.read(&scope.workspace, |tx| Box::pin(async move { tx.asset_type(&key).await })).await?;
    found.map(Json).ok_or_else(|| Problem::not_found("no such asset type in this workspace"))
}

/// Add an asset type, or replace one's name and fields. Assets keep the
/// attributes they have; the fields apply when an asset's attributes or
/// type are next written.
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/asset-types/{id}", tag = "assets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Asset type key (`^[a-z][a-z0-9_]{0,39}$`)")),
    request_body = crate::schemas::AssetTypeDocument,
    responses((status = 200, description = "Replaced", body = AssetType),
              (status = 201, description = "Added", body = AssetType),
              (status = 409, description = "Another type has this name", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid fields; `errors` names every one", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn put_asset_type(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ObjectId(key): ObjectId<SchemaKey>,
    ApiJson(body): ApiJson<AssetTypeInput>,
) -> Result<Response, Problem> {
    if let Err(errors) = check_fields(&body.fields) {
        let errors: Vec<FieldError> =
            errors.into_iter().map(|e| FieldError { path: e.path, message: e.message }).collect();
        let first = errors[0].clone();
        return Err(Problem::unprocessable("invalid_asset_type", &first.path, first.message).with_errors(errors));
    }
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let (saved, created) = tx.save_asset_type(&key, &body.name, &body.fields).await.map_err(|e| {
        if e.sqlstate().as_deref() == Some("23505") {
            Problem::new(StatusCode::CONFLICT, "name_taken", "another asset type has this name")
        } else {
            e.into()
        }
    })?;
    let action = if created { "asset_type.created" } else { "asset_type.updated" };
    changes::record(&mut tx, &scope, action, &key, json!(saved)).await?;
    tx.commit().await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(saved)).into_response())
}

/// Delete an asset type that no asset has and that Anchor did not ship.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/asset-types/{id}", tag = "assets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Asset type key")),
    responses((status = 204, description = "Deleted"),
              (status = 409, description = "Built in, or assets have it", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn delete_asset_type(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ObjectId(key): ObjectId<SchemaKey>,
) -> Result<StatusCode, Problem> {
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    match tx.delete_asset_type(&key).await? {
        None => return Err(Problem::not_found("no such asset type in this workspace")),
        Some(false) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "asset_type_in_use",
                "this type is built in or assets have it; rename it or change its fields instead",
            ));
        }
        Some(true) => {}
    }
    changes::record(&mut tx, &scope, "asset_type.deleted", &key, json!({})).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AssetQuery {
    /// Words the name, host name or serial starts with.
    #[param(max_length = 200)]
    q: Option<String>,
    /// Only assets of this status (without it: every status but `retired` and `disposed`).
    #[param(inline)]
    status: Option<AssetStatus>,
    /// Only assets of this type (its key).
    #[param(inline)]
    #[serde(rename = "type")]
    type_key: Option<SchemaKey>,
    /// Only assets at this site.
    #[param(inline)]
    site_id: Option<SiteId>,
    /// Only assets with this tag.
    #[param(inline)]
    tag: Option<Tag>,
    /// Only assets with (`true`) or without (`false`) an agent.
    has_agent: Option<bool>,
}

/// Assets by name, each with its agent's state, open alerts, failing checks
/// and open tickets.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/assets", tag = "assets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), AssetQuery, PageParams),
    responses((status = 200, body = Page<AssetRow>)))]
pub(crate) async fn list_assets(
    scope: WorkspaceScope<perm::AssetsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AssetQuery>,
    paging: Paging,
) -> Result<Json<Page<AssetRow>>, Problem> {
    if query.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return Err(Problem::unprocessable("invalid_query", "/q", "at most 200 characters"));
    }
    let filter = AssetFilter {
        search: query.q,
        statuses: query.status.into_iter().collect(),
        type_key: query.type_key,
        site_id: query.site_id,
        tag: query.tag.map(|t| t.as_str().to_owned()),
        has_agent: query.has_agent,
        ids: Vec::new(),
    };
    let (after, limit) = (paging.after::<ByName>()?, paging.fetch());
    let rows = state
        .db
        .read(&scope.workspace, |tx| Box::pin(async move { tx.asset_rows(&filter, after.as_ref(), limit).await }))
        .await?;
    Ok(Json(paging.page(rows, |r| ByName::of(&r.asset.name, r.asset.id), |r| r)))
}

/// An asset, as its list row shows it.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/assets/{id}", tag = "assets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Asset id")),
    responses((status = 200, body = AssetRow)))]
pub(crate) async fn get_asset(
    scope: WorkspaceScope<perm::AssetsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<AssetId>,
) -> Result<Json<AssetRow>, Problem> {
    let row = state.db.read(&scope.workspace, |tx| Box::pin(tx.asset_row(id))).await?;
    row.map(Json).ok_or_else(|| not_found(&id))
}

/// The asset's relationships, both ways (`asset_id` is this asset, or
/// `target_id` is).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/assets/{id}/relationships", tag = "assets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Asset id")),
    responses((status = 200, body = Page<Relationship>)))]
pub(crate) async fn list_relationships(
    scope: WorkspaceScope<perm::AssetsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<AssetId>,
) -> Result<Json<Page<Relationship>>, Problem> {
    let found = state
        .db
        .read(&scope.workspace, |tx| {
            Box::pin(async move {
                if tx.asset(id).await?.is_none() {
                    return Ok(None);
                }
                tx.relationships_of(id).await.map(Some)
            })
        })
        .await?;
    let items = found.ok_or_else(|| not_found(&id))?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// What breaks if this asset fails: every asset that depends on it,
/// transitively (cycles walked once), nearest first, each with how the
/// failure reaches it and its open alerts and tickets.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/assets/{id}/impact", tag = "assets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Asset id")),
    responses((status = 200, body = Impact)))]
pub(crate) async fn get_impact(
    scope: WorkspaceScope<perm::AssetsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<AssetId>,
) -> Result<Json<Impact>, Problem> {
    let impact = state.db.read(&scope.workspace, |tx| Box::pin(tx.impact(id))).await?;
    impact.map(Json).ok_or_else(|| not_found(&id))
}
