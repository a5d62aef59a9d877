use super::*;

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn layer(c: char, size: u64) -> ImageLayer {
    ImageLayer {
        name: digest(c),
        size,
        media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
    }
}

fn schema2_image(name: char, layers: &[(char, u64)], config: (char, u64)) -> Image {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.1, "digest": digest(config.0)},
        "layers": layers.iter().map(|(c, s)| json!({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": s, "digest": digest(*c)})).collect::<Vec<_>>(),
    });
    let mut i = Image::default();
    i.metadata.name = digest(name);
    i.docker_image_manifest = manifest.to_string();
    i.docker_image_manifest_media_type =
        "application/vnd.docker.distribution.manifest.v2+json".into();
    i.docker_image_layers = layers.iter().map(|(c, s)| layer(*c, *s)).collect();
    i
}

#[test]
fn path_components() {
    for ok in [
        "a", "abc", "a.b", "a_b", "a__b", "a-b", "a---b", "a1-2.b_c", "0",
    ] {
        assert!(valid_path_component(ok), "{ok}");
    }
    for bad in [
        "", "A", "a.", ".a", "a..b", "a___b", "a-.b", "a/b", "a b", "-a", "a-", "é",
    ] {
        assert!(!valid_path_component(bad), "{bad}");
    }
    assert!(validate_stream_name("ns", "is").is_ok());
    let e = validate_stream_name("ns", "Bad").unwrap_err();
    assert_eq!(e, "must match \"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*\"");
    assert!(validate_stream_name(&"n".repeat(200), &"i".repeat(60)).is_err());
}

#[test]
fn digests_and_tags() {
    assert!(valid_digest(&digest('a')));
    assert!(!valid_digest(&digest('A')));
    assert!(!valid_digest("sha256:abc"));
    assert!(!valid_digest(&format!("sha512:{}", "a".repeat(64))));
    for ok in ["latest", "v1.0", "1", "_x", "a-b.c_D"] {
        assert!(valid_tag(ok), "{ok}");
    }
    for bad in ["", ".x", "-x", "a:b", "a/b", &"x".repeat(129)] {
        assert!(!valid_tag(bad), "{bad}");
    }
}

#[test]
fn image_blobs_and_sizes() {
    // Layer 'b' twice: counted once.
    let img = schema2_image('1', &[('a', 100), ('b', 20), ('b', 20)], ('c', 5));
    let cfg = img.config_blob().unwrap();
    assert_eq!(cfg.digest, digest('c'));
    assert_eq!(cfg.size, 5);
    assert_eq!(
        cfg.media_type,
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(img.blobs().len(), 3);
    assert_eq!(img.computed_size(), 125);
    assert_eq!(img.size(), 125);

    let mut filled = img.clone();
    filled.fill_metadata();
    assert_eq!(
        filled.docker_image_metadata,
        Some(json!({"kind": "DockerImage", "apiVersion": "1.0", "Size": 125}))
    );
    // Present metadata is kept and its Size wins.
    let mut given = img.clone();
    given.docker_image_metadata = Some(json!({"kind": "DockerImage", "Size": 7}));
    given.fill_metadata();
    assert_eq!(
        given.docker_image_metadata,
        Some(json!({"kind": "DockerImage", "Size": 7}))
    );
    assert_eq!(given.size(), 7);

    // No manifest: config from dockerImageConfig, digest from metadata Id.
    let mut legacy = Image {
        docker_image_config: "{\"os\":\"linux\"}".into(),
        docker_image_metadata: Some(json!({"Id": digest('d')})),
        ..Default::default()
    };
    let cfg = legacy.config_blob().unwrap();
    assert_eq!(cfg.digest, digest('d'));
    assert_eq!(cfg.size, 14);
    // Without an Id, the digest of the config itself.
    legacy.docker_image_metadata = None;
    let cfg = legacy.config_blob().unwrap();
    assert_eq!(
        cfg.digest,
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(b"{\"os\":\"linux\"}"))
        )
    );
    // Manifest lists have no config.
    let list = Image {
        docker_image_manifest: json!({"schemaVersion": 2, "manifests": []}).to_string(),
        ..Default::default()
    };
    assert_eq!(list.config_blob(), None);
    assert_eq!(list.computed_size(), 0);
}

#[test]
fn image_json_roundtrip_keeps_unknown_fields() {
    let v = json!({
        "kind": "Image", "apiVersion": "image.openshift.io/v1",
        "metadata": {"name": digest('a'), "annotations": {"openshift.io/image.managed": "true"}, "finalizers": ["x"]},
        "dockerImageReference": "r/ns/is@x",
        "dockerImageManifest": "{}",
        "dockerImageLayers": [{"name": digest('b'), "size": 3, "mediaType": "m"}],
        "dockerImageSignatures": ["YWJj"],
        "dockerImageManifests": [{"digest": digest('c'), "mediaType": "m", "manifestSize": 10, "architecture": "amd64", "os": "linux"}],
    });
    let img: Image = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(img.child_digests(), vec![digest('c')]);
    assert_eq!(serde_json::to_value(&img).unwrap(), v);
    // null fields are the zero value.
    let img: Image = serde_json::from_value(
        json!({"metadata": {"name": digest('a'), "labels": null}, "dockerImageLayers": null}),
    )
    .unwrap();
    assert!(img.docker_image_layers.is_empty());
}

fn stream(ns: &str, name: &str) -> ImageStream {
    let mut input = ImageStream::default();
    input.metadata.name = name.into();
    ImageStream::create(
        input,
        ns,
        "reg:5000",
        "uid-1".into(),
        "2024-01-01T00:00:00Z",
    )
}

#[test]
fn created_stream_shape() {
    let s = stream("ns", "is");
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({
            "kind": "ImageStream",
            "apiVersion": "image.openshift.io/v1",
            "metadata": {"name": "is", "namespace": "ns", "uid": "uid-1", "generation": 1,
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"lookupPolicy": {"local": false}},
            "status": {"dockerImageRepository": "reg:5000/ns/is", "tags": []},
        })
    );
    assert_eq!(
        s.decorate("other").status.docker_image_repository,
        "other/ns/is"
    );
}

#[test]
fn tag_events_newest_first() {
    let mut s = stream("ns", "is");
    assert!(s.add_tag_event("latest", &digest('a'), "r@a", "t1"));
    assert_eq!(s.metadata.generation, 2);
    assert!(s.add_tag_event("latest", &digest('b'), "r@b", "t2"));
    // Same newest image: no-op, no generation bump.
    assert!(!s.add_tag_event("latest", &digest('b'), "r@b", "t3"));
    assert_eq!(s.metadata.generation, 3);
    assert!(s.add_tag_event("a-tag", &digest('a'), "r@a", "t4"));
    let tags: Vec<_> = s.status.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(tags, ["a-tag", "latest"]);
    let latest = s.tag_history("latest").unwrap();
    assert_eq!(
        latest.items,
        vec![
            TagEvent {
                created: "t2".into(),
                docker_image_reference: "r@b".into(),
                image: digest('b'),
                generation: 2
            },
            TagEvent {
                created: "t1".into(),
                docker_image_reference: "r@a".into(),
                image: digest('a'),
                generation: 1
            },
        ]
    );
    assert_eq!(s.usage(), StreamUsage { images: 2, tags: 2 });
    assert_eq!(s.find_event(&digest('a')).unwrap().created, "t4");
    assert!(s.find_event(&digest('z')).is_none());

    // Status replacement drops empty tags.
    let mut replaced = s.clone();
    replaced.replace_status_tags(vec![
        NamedTagEventList {
            tag: "empty".into(),
            ..Default::default()
        },
        latest.clone(),
    ]);
    let tags: Vec<_> = replaced
        .status
        .tags
        .iter()
        .map(|t| t.tag.as_str())
        .collect();
    assert_eq!(tags, ["latest"]);

    // Tag removal.
    assert!(s.remove_tag("latest"));
    assert!(!s.remove_tag("latest"));
    assert_eq!(s.referenced_images().len(), 1);
    s.spec.tags.push(TagReference {
        name: "spec-only".into(),
        extra: Map::new(),
    });
    assert_eq!(s.usage().tags, 2);
    let g = s.metadata.generation;
    assert!(s.remove_tag("spec-only"));
    assert_eq!(s.metadata.generation, g + 1);
}

#[test]
fn layers_view() {
    let mut s = stream("ns", "is");
    let img1 = schema2_image('1', &[('a', 10), ('b', 20)], ('c', 5));
    let img2 = schema2_image('2', &[('a', 10), ('d', 30)], ('e', 6));
    let mut list = Image::default();
    list.metadata.name = digest('3');
    list.docker_image_manifests = vec![ImageManifest {
        digest: digest('2'),
        media_type: "m".into(),
        manifest_size: 1,
        architecture: "amd64".into(),
        os: "linux".into(),
        variant: String::new(),
    }];
    s.add_tag_event("latest", &digest('1'), "r", "t1");
    s.add_tag_event("multi", &digest('3'), "r", "t2");
    s.add_tag_event("gone", &digest('9'), "r", "t3");
    let store: BTreeMap<String, Image> = [img1, img2, list]
        .into_iter()
        .map(|i| (i.metadata.name.clone(), i))
        .collect();
    let mut loads = Vec::new();
    let closure = load_closure(s.referenced_images(), |d| {
        loads.push(d.to_string());
        Ok::<_, ()>(store.get(d).cloned())
    })
    .unwrap();
    assert_eq!(loads.len(), 4, "each digest loaded once: {loads:?}");
    let v = image_stream_layers(&s, &closure);
    assert_eq!(v["kind"], "ImageStreamLayers");
    assert_eq!(v["apiVersion"], "image.openshift.io/v1");
    assert_eq!(v["metadata"]["name"], "is");
    let blobs = v["blobs"].as_object().unwrap();
    assert_eq!(blobs.len(), 5);
    assert_eq!(
        blobs[&digest('c')],
        json!({"size": 5, "mediaType": "application/vnd.docker.container.image.v1+json"})
    );
    assert_eq!(blobs[&digest('a')]["size"], 10);
    let images = &v["images"];
    assert_eq!(
        images[digest('1')],
        json!({"layers": [digest('a'), digest('b')], "config": digest('c'), "imageMissing": false, "manifests": []})
    );
    assert_eq!(images[digest('3')]["manifests"], json!([digest('2')]));
    assert_eq!(images[digest('3')]["layers"], json!([]));
    assert_eq!(images[digest('2')]["config"], json!(digest('e')));
    assert_eq!(images[digest('9')]["imageMissing"], true);

    let usage = namespace_usage(&[s.clone(), stream("ns", "other")], &closure);
    assert_eq!(usage.imagestreams, 2);
    assert_eq!(usage.images, 3);
    // a, b, c, d, e once each.
    assert_eq!(usage.image_storage, 10 + 20 + 5 + 30 + 6);
}

#[test]
fn storage_added_by_new_references() {
    let closure = |images: &[&Image], missing: &[char]| -> BTreeMap<String, Option<Image>> {
        images
            .iter()
            .map(|i| (i.metadata.name.clone(), Some((*i).clone())))
            .chain(missing.iter().map(|c| (digest(*c), None)))
            .collect()
    };
    let img1 = schema2_image('1', &[('a', 10), ('b', 20)], ('c', 5));
    // Shares layer a and config c with img1; layer d twice.
    let img2 = schema2_image('2', &[('a', 10), ('d', 30), ('d', 30)], ('c', 5));
    let img3 = schema2_image('3', &[('f', 7)], ('e', 1));
    let existing = closure(&[&img1], &['9']);
    assert_eq!(added_storage(&existing, &closure(&[&img2], &[])), 30);
    // Already referenced, missing, or nothing: no cost.
    assert_eq!(added_storage(&existing, &closure(&[&img1], &[])), 0);
    assert_eq!(added_storage(&existing, &closure(&[], &['8'])), 0);
    assert_eq!(added_storage(&existing, &BTreeMap::new()), 0);
    // Several new images (a manifest list's closure): their blobs once each.
    assert_eq!(
        added_storage(&existing, &closure(&[&img2, &img3, &img1], &[])),
        30 + 7 + 1
    );
    // An empty namespace pays for everything.
    assert_eq!(
        added_storage(&BTreeMap::new(), &closure(&[&img1, &img2], &[])),
        10 + 20 + 5 + 30
    );
    // Consistent with namespace_usage: used + added = usage after.
    let before = namespace_usage(&[], &existing).image_storage;
    let after = namespace_usage(&[], &closure(&[&img1, &img2, &img3], &['9'])).image_storage;
    assert_eq!(
        before + added_storage(&existing, &closure(&[&img2, &img3], &[])),
        after
    );
}

#[test]
fn views_of_tags_and_images() {
    let mut s = stream("ns", "is");
    let mut img = schema2_image('1', &[('a', 10)], ('c', 5));
    img.docker_image_reference = "old/ns/is@x".into();
    s.add_tag_event("latest", &digest('1'), "reg/ns/is@sha", "t1");
    let ist = image_stream_tag(&s, "latest", &img);
    assert_eq!(ist["kind"], "ImageStreamTag");
    assert_eq!(ist["metadata"]["name"], "is:latest");
    assert_eq!(ist["metadata"]["namespace"], "ns");
    assert_eq!(ist["tag"], Value::Null);
    assert_eq!(ist["generation"], 1);
    assert_eq!(ist["image"]["kind"], "Image");
    assert_eq!(ist["image"]["dockerImageReference"], "reg/ns/is@sha");
    assert_eq!(ist["image"]["metadata"]["name"], digest('1'));
    let isi = image_stream_image(&s, &img);
    assert_eq!(isi["kind"], "ImageStreamImage");
    assert_eq!(isi["metadata"]["name"], format!("is@{}", digest('1')));
    assert_eq!(isi["image"]["dockerImageReference"], "reg/ns/is@sha");
}

#[test]
fn label_selectors() {
    let labels: BTreeMap<String, String> = [("app", "web"), ("tier", "db")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let m = |s: &str| selector_matches(&parse_label_selector(s).unwrap(), &labels);
    assert!(m(""));
    assert!(m("app=web"));
    assert!(m("app==web, tier=db"));
    assert!(!m("app=web,tier=web"));
    assert!(m("app!=db"));
    assert!(!m("missing=x"));
    assert!(m("missing!=x"));
    assert!(m("example.com/key!=v"));
    for bad in ["app", "app in (a,b)", "!app", "=v", "a=b c"] {
        assert!(parse_label_selector(bad).is_err(), "{bad}");
    }
}

#[test]
fn continue_tokens() {
    let t = encode_continue("ns/is");
    assert_ne!(t, "ns/is");
    assert_eq!(decode_continue(&t).as_deref(), Some("ns/is"));
    assert_eq!(decode_continue("bm9wZQ"), None);
    assert_eq!(decode_continue("!!"), None);
}
