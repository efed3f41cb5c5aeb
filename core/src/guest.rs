//! Names the host and the guest components must agree on, defined once.
//! The WIT world (`wit/world.wit`) declares the export; these are the strings
//! the host passes to wizer and the directory it preopens.

/// Where the host preopens the bundles root (read-only) for the query component.
pub const BUNDLES_ROOT: &str = "/bundles";

/// The pre-initialization export of the query component and of the local
/// wasi:nn provider, run once by wizer and removed from the snapshot. The
/// guests export it under the component-model core name
/// `cm32p2||wizer-initialize` (an attribute literal; `host/tests` pre-initialize
/// the real component, so a mismatch fails there).
pub const INIT_EXPORT: &str = "wizer-initialize";

#[cfg(test)]
mod tests {
    #[test]
    fn the_wit_world_declares_the_init_export() {
        let wit = include_str!("../../wit/world.wit");
        assert!(wit.contains(&format!("export {}: func();", super::INIT_EXPORT)), "wit/world.wit");
    }
}
