//! Image API objects of `image.openshift.io/v1` (Image, ImageStream, tag
//! events) and their logic: validation, image sizes and blobs, tag history,
//! ImageStreamTag / ImageStreamImage / ImageStreamLayers views, namespace
//! usage, label selectors and list continue tokens.
//!
//! Pure logic, no I/O (time and uids are passed in).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::admission::{NamespaceUsage, StreamUsage};

/// `apiVersion` of the image objects.
pub const IMAGE_API_VERSION: &str = "image.openshift.io/v1";
/// Registry host used in `status.dockerImageRepository` unless configured.
pub const DEFAULT_REGISTRY_HOST: &str = "image-registry.local:5000";
/// The distribution path-component grammar (image stream names).
pub const PATH_COMPONENT_PATTERN: &str = "[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*";
/// The distribution tag grammar.
pub const TAG_PATTERN: &str = "[\\w][\\w.-]{0,127}";
/// Media type given to a config blob known only from `dockerImageConfig`.
const DOCKER_CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";
const OCI_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// Go-style decoding: `null` is the zero value.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `metadata` of an object. Fields this server does not interpret are kept in `extra`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub uid: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub resource_version: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub generation: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub creation_timestamp: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ObjectMeta {
    /// Set the server-managed fields of a new object.
    pub fn init(&mut self, uid: String, now: &str) {
        self.uid = uid;
        self.creation_timestamp = now.to_string();
        self.resource_version.clear();
        for k in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            self.extra.remove(k);
        }
    }
}

/// `dockerImageLayers[]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageLayer {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub size: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub media_type: String,
}

/// `dockerImageManifests[]` (children of a manifest list).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    #[serde(default, deserialize_with = "nullable")]
    pub digest: String,
    #[serde(default, deserialize_with = "nullable")]
    pub media_type: String,
    #[serde(default, deserialize_with = "nullable")]
    pub manifest_size: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub architecture: String,
    #[serde(default, deserialize_with = "nullable")]
    pub os: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub variant: String,
}

/// An `Image` (cluster-scoped, named by its manifest digest). Stored as sent:
/// fields not listed here (signatures, …) are kept in `extra`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub api_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub docker_image_reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image_metadata: Option<Value>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub docker_image_metadata_version: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub docker_image_manifest: String,
    #[serde(default, deserialize_with = "nullable")]
    pub docker_image_layers: Vec<ImageLayer>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub docker_image_manifest_media_type: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub docker_image_config: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub docker_image_manifests: Vec<ImageManifest>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A blob referenced by an image (layer or config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

impl Image {
    /// Set `kind` / `apiVersion`.
    pub fn typed(mut self) -> Image {
        self.kind = "Image".to_string();
        self.api_version = IMAGE_API_VERSION.to_string();
        self
    }

    /// Layers in manifest order (duplicates kept).
    pub fn layer_blobs(&self) -> Vec<Blob> {
        self.docker_image_layers
            .iter()
            .map(|l| Blob {
                digest: l.name.clone(),
                size: l.size,
                media_type: l.media_type.clone(),
            })
            .collect()
    }

    /// The config blob: the manifest's `config` descriptor, else (with
    /// `dockerImageConfig`) `dockerImageMetadata.Id` or the config's own digest.
    pub fn config_blob(&self) -> Option<Blob> {
        let manifest: Option<Value> = if self.docker_image_manifest.is_empty() {
            None
        } else {
            serde_json::from_str(&self.docker_image_manifest).ok()
        };
        let manifest_media_type = manifest
            .as_ref()
            .and_then(|m| m.get("mediaType"))
            .and_then(Value::as_str)
            .unwrap_or(&self.docker_image_manifest_media_type)
            .to_string();
        if let Some(cfg) = manifest.as_ref().and_then(|m| m.get("config")) {
            if let Some(digest) = cfg.get("digest").and_then(Value::as_str) {
                if valid_digest(digest) {
                    let size = cfg
                        .get("size")
                        .and_then(Value::as_u64)
                        .unwrap_or(self.docker_image_config.len() as u64);
                    let media_type = cfg
                        .get("mediaType")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| default_config_media_type(&manifest_media_type));
                    return Some(Blob {
                        digest: digest.to_string(),
                        size,
                        media_type,
                    });
                }
            }
        }
        if self.docker_image_config.is_empty() {
            return None;
        }
        let digest = self
            .docker_image_metadata
            .as_ref()
            .and_then(|m| m.get("Id"))
            .and_then(Value::as_str)
            .filter(|id| valid_digest(id))
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "sha256:{}",
                    hex::encode(Sha256::digest(self.docker_image_config.as_bytes()))
                )
            });
        Some(Blob {
            digest,
            size: self.docker_image_config.len() as u64,
            media_type: default_config_media_type(&manifest_media_type),
        })
    }

    /// Every blob of the image (layers, then config), each digest once.
    pub fn blobs(&self) -> Vec<Blob> {
        let mut seen = BTreeSet::new();
        self.layer_blobs()
            .into_iter()
            .chain(self.config_blob())
            .filter(|b| seen.insert(b.digest.clone()))
            .collect()
    }

    /// Sum of the sizes of the distinct layers plus the config.
    pub fn computed_size(&self) -> u64 {
        self.blobs()
            .iter()
            .fold(0u64, |acc, b| acc.saturating_add(b.size))
    }

    /// `dockerImageMetadata.Size` if set, else [`Image::computed_size`].
    pub fn size(&self) -> u64 {
        self.docker_image_metadata
            .as_ref()
            .and_then(|m| m.get("Size"))
            .and_then(Value::as_u64)
            .unwrap_or_else(|| self.computed_size())
    }

    /// Fill `dockerImageMetadata` minimally if absent.
    pub fn fill_metadata(&mut self) {
        if self.docker_image_metadata.is_none() {
            self.docker_image_metadata = Some(json!({
                "kind": "DockerImage",
                "apiVersion": "1.0",
                "Size": self.computed_size(),
            }));
            if self.docker_image_metadata_version.is_empty() {
                self.docker_image_metadata_version = "1.0".to_string();
            }
        }
    }

    /// Digests of the children of a manifest list.
    pub fn child_digests(&self) -> Vec<String> {
        self.docker_image_manifests
            .iter()
            .map(|m| m.digest.clone())
            .collect()
    }
}

fn default_config_media_type(manifest_media_type: &str) -> String {
    if manifest_media_type.starts_with("application/vnd.oci.") {
        OCI_CONFIG_MEDIA_TYPE.to_string()
    } else {
        DOCKER_CONFIG_MEDIA_TYPE.to_string()
    }
}

/// `spec.tags[]`: only the name is interpreted.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct TagReference {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_policy: Option<Value>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub docker_image_repository: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<TagReference>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One history entry of a tag.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TagEvent {
    #[serde(default, deserialize_with = "nullable")]
    pub created: String,
    #[serde(default, deserialize_with = "nullable")]
    pub docker_image_reference: String,
    #[serde(default, deserialize_with = "nullable")]
    pub image: String,
    #[serde(default, deserialize_with = "nullable")]
    pub generation: i64,
}

/// `status.tags[]`: the history of one tag, newest first.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct NamedTagEventList {
    #[serde(default, deserialize_with = "nullable")]
    pub tag: String,
    #[serde(default, deserialize_with = "nullable")]
    pub items: Vec<TagEvent>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamStatus {
    #[serde(default, deserialize_with = "nullable")]
    pub docker_image_repository: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub public_docker_image_repository: String,
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<NamedTagEventList>,
}

/// An `ImageStream`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageStream {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub api_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: ImageStreamSpec,
    #[serde(default, deserialize_with = "nullable")]
    pub status: ImageStreamStatus,
}

impl ImageStream {
    /// A new stream from a create request body (`metadata.name` already validated):
    /// server fields set, `generation` 1, empty status.
    pub fn create(
        mut input: ImageStream,
        namespace: &str,
        registry_host: &str,
        uid: String,
        now: &str,
    ) -> ImageStream {
        input.metadata.namespace = namespace.to_string();
        input.metadata.init(uid, now);
        input.metadata.generation = 1;
        if input.spec.lookup_policy.is_none() {
            input.spec.lookup_policy = Some(json!({"local": false}));
        }
        input.status = ImageStreamStatus::default();
        input.decorate(registry_host)
    }

    /// Set `kind` / `apiVersion` and `status.dockerImageRepository` (`<host>/<ns>/<name>`).
    pub fn decorate(mut self, registry_host: &str) -> ImageStream {
        self.kind = "ImageStream".to_string();
        self.api_version = IMAGE_API_VERSION.to_string();
        self.status.docker_image_repository = format!(
            "{registry_host}/{}/{}",
            self.metadata.namespace, self.metadata.name
        );
        self
    }

    /// The history of `tag`.
    pub fn tag_history(&self, tag: &str) -> Option<&NamedTagEventList> {
        self.status.tags.iter().find(|t| t.tag == tag)
    }

    /// The spec tag `tag`.
    pub fn spec_tag(&self, tag: &str) -> Option<&TagReference> {
        self.spec.tags.iter().find(|t| t.name == tag)
    }

    /// Prepend a tag event for `image` to `tag` (created if missing), with the
    /// stream's current generation, then bump the generation. `false` (and no
    /// change) if the newest event of the tag already is that image.
    pub fn add_tag_event(
        &mut self,
        tag: &str,
        image: &str,
        docker_image_reference: &str,
        now: &str,
    ) -> bool {
        let generation = self.metadata.generation;
        let pos = match self.status.tags.iter().position(|t| t.tag == tag) {
            Some(p) => p,
            None => {
                let at = self
                    .status
                    .tags
                    .iter()
                    .position(|t| t.tag.as_str() > tag)
                    .unwrap_or(self.status.tags.len());
                self.status.tags.insert(
                    at,
                    NamedTagEventList {
                        tag: tag.to_string(),
                        ..Default::default()
                    },
                );
                at
            }
        };
        let Some(list) = self.status.tags.get_mut(pos) else {
            return false;
        };
        if list.items.first().is_some_and(|e| e.image == image) {
            return false;
        }
        list.items.insert(
            0,
            TagEvent {
                created: now.to_string(),
                docker_image_reference: docker_image_reference.to_string(),
                image: image.to_string(),
                generation,
            },
        );
        self.metadata.generation = generation.saturating_add(1);
        true
    }

    /// Replace `status.tags` (sorted by tag, tags without items dropped).
    pub fn replace_status_tags(&mut self, tags: Vec<NamedTagEventList>) {
        let mut tags: Vec<_> = tags.into_iter().filter(|t| !t.items.is_empty()).collect();
        tags.sort_by(|a, b| a.tag.cmp(&b.tag));
        tags.dedup_by(|a, b| a.tag == b.tag);
        self.status.tags = tags;
    }

    /// Remove `tag` from status and spec; `false` if it was in neither.
    /// Removing a spec tag bumps the generation.
    pub fn remove_tag(&mut self, tag: &str) -> bool {
        let before_status = self.status.tags.len();
        self.status.tags.retain(|t| t.tag != tag);
        let before_spec = self.spec.tags.len();
        self.spec.tags.retain(|t| t.name != tag);
        let spec_changed = self.spec.tags.len() != before_spec;
        if spec_changed {
            self.metadata.generation = self.metadata.generation.saturating_add(1);
        }
        spec_changed || self.status.tags.len() != before_status
    }

    /// Every image digest of the tag history (all tags, all items).
    pub fn referenced_images(&self) -> BTreeSet<String> {
        self.status
            .tags
            .iter()
            .flat_map(|t| t.items.iter().map(|e| e.image.clone()))
            .filter(|d| !d.is_empty())
            .collect()
    }

    /// The newest tag event (of any tag) for `digest`.
    pub fn find_event(&self, digest: &str) -> Option<&TagEvent> {
        self.status
            .tags
            .iter()
            .flat_map(|t| t.items.iter())
            .filter(|e| e.image == digest)
            .max_by(|a, b| a.created.cmp(&b.created))
    }

    /// What the stream's LimitRange items constrain.
    pub fn usage(&self) -> StreamUsage {
        let tags: BTreeSet<&str> = self
            .status
            .tags
            .iter()
            .map(|t| t.tag.as_str())
            .chain(self.spec.tags.iter().map(|t| t.name.as_str()))
            .collect();
        StreamUsage {
            images: self.referenced_images().len(),
            tags: tags.len(),
        }
    }
}

// ---------------------------------------------------------------------------
// Views

/// `image` as a view shows it: typed, with the pull spec of its tag `event` (if any).
fn image_as_tagged(image: &Image, event: Option<&TagEvent>) -> Image {
    let mut image = image.clone().typed();
    if let Some(e) = event.filter(|e| !e.docker_image_reference.is_empty()) {
        image.docker_image_reference = e.docker_image_reference.clone();
    }
    image
}

/// `ImageStreamTag` `<stream>:<tag>` for the newest event of `tag` and its image.
pub fn image_stream_tag(stream: &ImageStream, tag: &str, image: &Image) -> Value {
    let history = stream.tag_history(tag);
    let event = history.and_then(|h| h.items.first());
    let image = image_as_tagged(image, event);
    let mut metadata = Map::new();
    metadata.insert(
        "name".into(),
        json!(format!("{}:{tag}", stream.metadata.name)),
    );
    metadata.insert("namespace".into(), json!(stream.metadata.namespace));
    metadata.insert("uid".into(), json!(stream.metadata.uid));
    metadata.insert(
        "resourceVersion".into(),
        json!(stream.metadata.resource_version),
    );
    let created = event
        .map(|e| e.created.clone())
        .unwrap_or_else(|| stream.metadata.creation_timestamp.clone());
    metadata.insert("creationTimestamp".into(), json!(created));
    let mut out = json!({
        "kind": "ImageStreamTag",
        "apiVersion": IMAGE_API_VERSION,
        "metadata": metadata,
        "tag": stream.spec_tag(tag),
        "generation": event.map(|e| e.generation).unwrap_or(stream.metadata.generation),
        "lookupPolicy": stream.spec.lookup_policy.clone().unwrap_or_else(|| json!({"local": false})),
        "image": image,
    });
    if let Some(conds) = history.filter(|h| !h.conditions.is_empty()) {
        if let Some(o) = out.as_object_mut() {
            o.insert("conditions".into(), json!(conds.conditions));
        }
    }
    out
}

/// `ImageStreamImage` `<stream>@<digest>`.
pub fn image_stream_image(stream: &ImageStream, image: &Image) -> Value {
    let image = image_as_tagged(image, stream.find_event(&image.metadata.name));
    json!({
        "kind": "ImageStreamImage",
        "apiVersion": IMAGE_API_VERSION,
        "metadata": {
            "name": format!("{}@{}", stream.metadata.name, image.metadata.name),
            "namespace": stream.metadata.namespace,
            "uid": image.metadata.uid,
            "resourceVersion": image.metadata.resource_version,
            "creationTimestamp": image.metadata.creation_timestamp,
        },
        "image": image,
    })
}

/// Digests of `roots` plus, transitively, the children of the manifest lists
/// among them, loaded with `load` (`None`: missing). Each digest is loaded once.
pub fn load_closure<E>(
    roots: impl IntoIterator<Item = String>,
    mut load: impl FnMut(&str) -> Result<Option<Image>, E>,
) -> Result<BTreeMap<String, Option<Image>>, E> {
    let mut out: BTreeMap<String, Option<Image>> = BTreeMap::new();
    let mut queue: Vec<String> = roots.into_iter().collect();
    while let Some(d) = queue.pop() {
        if out.contains_key(&d) {
            continue;
        }
        let img = load(&d)?;
        if let Some(i) = &img {
            queue.extend(
                i.child_digests()
                    .into_iter()
                    .filter(|c| !out.contains_key(c)),
            );
        }
        out.insert(d, img);
    }
    Ok(out)
}

/// `ImageStreamLayers` of `stream`; `images` is the [`load_closure`] of its
/// referenced images.
pub fn image_stream_layers(
    stream: &ImageStream,
    images: &BTreeMap<String, Option<Image>>,
) -> Value {
    let mut blobs = Map::new();
    let mut refs = Map::new();
    for (digest, image) in images {
        let Some(image) = image else {
            refs.insert(
                digest.clone(),
                json!({"layers": [], "imageMissing": true, "manifests": []}),
            );
            continue;
        };
        let layers = image.layer_blobs();
        let config = image.config_blob();
        for b in layers.iter().chain(config.iter()) {
            blobs
                .entry(b.digest.clone())
                .or_insert_with(|| json!({"size": b.size, "mediaType": b.media_type}));
        }
        let mut r = Map::new();
        r.insert(
            "layers".into(),
            json!(layers.iter().map(|b| &b.digest).collect::<Vec<_>>()),
        );
        if let Some(c) = &config {
            r.insert("config".into(), json!(c.digest));
        }
        r.insert("imageMissing".into(), json!(false));
        r.insert("manifests".into(), json!(image.child_digests()));
        refs.insert(digest.clone(), Value::Object(r));
    }
    json!({
        "kind": "ImageStreamLayers",
        "apiVersion": IMAGE_API_VERSION,
        "metadata": {
            "name": stream.metadata.name,
            "namespace": stream.metadata.namespace,
            "uid": stream.metadata.uid,
            "resourceVersion": stream.metadata.resource_version,
            "creationTimestamp": stream.metadata.creation_timestamp,
        },
        "blobs": blobs,
        "images": refs,
    })
}

/// Quota usage of a namespace from its streams and the [`load_closure`] of
/// their referenced images.
pub fn namespace_usage(
    streams: &[ImageStream],
    images: &BTreeMap<String, Option<Image>>,
) -> NamespaceUsage {
    let referenced: BTreeSet<String> = streams.iter().flat_map(|s| s.referenced_images()).collect();
    NamespaceUsage {
        imagestreams: streams.len() as u64,
        images: referenced.len() as u64,
        image_storage: blob_sizes(images).values().map(|s| u128::from(*s)).sum(),
    }
}

/// Size of each distinct blob (layers and configs) of the images of a
/// [`load_closure`] (missing images have none).
fn blob_sizes(images: &BTreeMap<String, Option<Image>>) -> BTreeMap<String, u64> {
    let mut blobs = BTreeMap::new();
    for image in images.values().flatten() {
        for b in image.blobs() {
            blobs.entry(b.digest).or_insert(b.size);
        }
    }
    blobs
}

/// Bytes that referencing the images of `added` adds to the
/// `openshift.io/image-storage` of a namespace whose images are `existing`
/// (both [`load_closure`]s): the sizes of the blobs of `added` that no image
/// of `existing` has.
pub fn added_storage(
    existing: &BTreeMap<String, Option<Image>>,
    added: &BTreeMap<String, Option<Image>>,
) -> u128 {
    let known = blob_sizes(existing);
    blob_sizes(added)
        .into_iter()
        .filter(|(digest, _)| !known.contains_key(digest))
        .map(|(_, size)| u128::from(size))
        .sum()
}

// ---------------------------------------------------------------------------
// Validation

/// Whether `s` matches the distribution path-component grammar [`PATH_COMPONENT_PATTERN`].
pub fn valid_path_component(s: &str) -> bool {
    crate::route::is_name_component(s)
}

/// Validate an image stream name in `namespace`; `Err` is the field detail.
pub fn validate_stream_name(namespace: &str, name: &str) -> Result<(), String> {
    if !valid_path_component(name) {
        return Err(format!("must match {PATH_COMPONENT_PATTERN:?}"));
    }
    if namespace.len() + 1 + name.len() > 255 {
        return Err("'namespace/name' cannot be longer than 255 characters".to_string());
    }
    Ok(())
}

/// Whether `s` is `sha256:<64 lowercase hex digits>`.
pub fn valid_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// Whether `s` matches the tag grammar [`TAG_PATTERN`].
pub fn valid_tag(s: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

// ---------------------------------------------------------------------------
// Label selectors

/// One requirement of an equality-based label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
}

/// Parse `k=v,k2==v2,k3!=v3`. `Err` is the reason.
pub fn parse_label_selector(s: &str) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return Ok(out);
    }
    let valid_key = |k: &str| {
        !k.is_empty()
            && k.len() <= 317
            && k.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_./".contains(&c))
    };
    let valid_value = |v: &str| {
        v.len() <= 63
            && v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
    };
    for part in s.split(',') {
        let part = part.trim();
        let (key, value, negate) = if let Some((k, v)) = part.split_once("!=") {
            (k, v, true)
        } else if let Some((k, v)) = part.split_once("==") {
            (k, v, false)
        } else if let Some((k, v)) = part.split_once('=') {
            (k, v, false)
        } else {
            return Err(format!(
                "unable to parse requirement: {part:?}: only equality-based requirements \
                 (key=value, key==value, key!=value) are supported"
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        if !valid_key(key) {
            return Err(format!("invalid label key {key:?}"));
        }
        if !valid_value(value) {
            return Err(format!("invalid label value: {value:?}"));
        }
        out.push(if negate {
            Requirement::NotEquals(key.to_string(), value.to_string())
        } else {
            Requirement::Equals(key.to_string(), value.to_string())
        });
    }
    Ok(out)
}

/// Whether `labels` satisfy every requirement.
pub fn selector_matches(reqs: &[Requirement], labels: &BTreeMap<String, String>) -> bool {
    reqs.iter().all(|r| match r {
        Requirement::Equals(k, v) => labels.get(k) == Some(v),
        Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
    })
}

// ---------------------------------------------------------------------------
// List continue tokens

const CONTINUE_PREFIX: &str = "portcullis/v1:";

/// Opaque continue token for a list resuming after `key`.
pub fn encode_continue(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CONTINUE_PREFIX}{key}"))
}

/// The key of a continue token; `None` if it is not one of ours.
pub fn decode_continue(token: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let s = String::from_utf8(bytes).ok()?;
    s.strip_prefix(CONTINUE_PREFIX).map(str::to_string)
}

// ---------------------------------------------------------------------------
// Time

#[cfg(test)]
mod tests;
