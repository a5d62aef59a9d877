//! Content negotiation for manifest GET/HEAD (pure): never return a media type the client did
//! not accept.

use crate::manifest::parse::bare;

/// Does the `Accept` header list (all values) allow `media_type`? No `Accept` at all, `*/*` and
/// `application/*` accept anything.
pub fn accepts(accept: &[&str], media_type: &str) -> bool {
    let types: Vec<&str> = accept
        .iter()
        .flat_map(|v| v.split(','))
        .map(bare)
        .filter(|t| !t.is_empty())
        .collect();
    types.is_empty()
        || types
            .iter()
            .any(|t| *t == media_type || *t == "*/*" || *t == "application/*")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse::{DOCKER_V2, OCI_INDEX, OCI_MANIFEST};

    #[test]
    fn negotiation() {
        assert!(accepts(&[], OCI_MANIFEST));
        assert!(accepts(&["application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"], OCI_INDEX));
        assert!(accepts(
            &[
                DOCKER_V2,
                "application/vnd.oci.image.manifest.v1+json; q=0.5"
            ],
            OCI_MANIFEST
        ));
        assert!(!accepts(&[DOCKER_V2], OCI_MANIFEST));
        assert!(accepts(&["*/*"], OCI_INDEX));
    }
}
