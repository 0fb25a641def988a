use super::chart::PALETTE;
use super::*;
use plotters::prelude::{BLACK, RGBColor};

/// A controller's colour depends only on the experiment's order (the baseline first), never on which
/// controllers a figure happens to show.
#[test]
fn colours_follow_the_experiment_not_the_figure() {
    let names = ["b", "a", "b", "c"].map(String::from);
    let c = Colours::new(names, Some("c"), |n: &str| n.to_string());
    assert_eq!((c.of("c"), c.of("b"), c.of("a")), (PALETTE[0], PALETTE[1], PALETTE[2]));
    assert_eq!(c.of("not-in-the-sweep"), BLACK);
}

/// A family shares its hue: members are distinct shades of it, dark to light, and never another
/// family's colour.
#[test]
fn a_family_is_one_hue_in_shades() {
    let names = ["hpa-0.4", "hpa-0.6", "hpa-0.8", "aci"].map(String::from);
    let fam = |n: &str| n.split('-').next().unwrap().to_string();
    let c = Colours::new(names, Some("hpa-0.6"), fam);
    assert_eq!(c.of_family("hpa"), PALETTE[0]);
    assert_eq!(c.of("aci"), PALETTE[1]);
    let shades: Vec<RGBColor> = ["hpa-0.6", "hpa-0.4", "hpa-0.8"].iter().map(|n| c.of(n)).collect();
    let lum = |c: &RGBColor| c.0 as u32 + c.1 as u32 + c.2 as u32;
    assert!(lum(&shades[0]) < lum(&shades[1]) && lum(&shades[1]) < lum(&shades[2]), "{shades:?}");
    assert!(shades.iter().all(|s| *s != PALETTE[1]));
}
