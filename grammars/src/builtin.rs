//! The hotline's grammar files, compiled into the program.
//!
//! [`builtin`] parses the files under `grammars/<locale>/` that were present at build time, so
//! a server or `ivr chat` runs with no files beside it. A deployment that edits grammars loads
//! its own directory with [`Grammar::load_dir`](crate::Grammar::load_dir) instead.

use crate::{Grammar, Lang, Result};

/// Every built-in grammar file as (locale, file name, source).
pub const BUILTIN_FILES: &[(Lang, &str, &str)] = &[
    (
        Lang::En,
        "after_service.abnf",
        include_str!("../en/after_service.abnf"),
    ),
    (
        Lang::En,
        "after_service_dtmf.abnf",
        include_str!("../en/after_service_dtmf.abnf"),
    ),
    (
        Lang::En,
        "case_type.abnf",
        include_str!("../en/case_type.abnf"),
    ),
    (
        Lang::En,
        "case_type_dtmf.abnf",
        include_str!("../en/case_type_dtmf.abnf"),
    ),
    (
        Lang::En,
        "emergency.abnf",
        include_str!("../en/emergency.abnf"),
    ),
    (Lang::En, "global.abnf", include_str!("../en/global.abnf")),
    (
        Lang::En,
        "global_dtmf.abnf",
        include_str!("../en/global_dtmf.abnf"),
    ),
    (
        Lang::En,
        "info_topics.abnf",
        include_str!("../en/info_topics.abnf"),
    ),
    (
        Lang::En,
        "info_topics_dtmf.abnf",
        include_str!("../en/info_topics_dtmf.abnf"),
    ),
    (
        Lang::En,
        "language.abnf",
        include_str!("../en/language.abnf"),
    ),
    (
        Lang::En,
        "language_dtmf.abnf",
        include_str!("../en/language_dtmf.abnf"),
    ),
    (
        Lang::En,
        "main_menu.abnf",
        include_str!("../en/main_menu.abnf"),
    ),
    (
        Lang::En,
        "main_menu_dtmf.abnf",
        include_str!("../en/main_menu_dtmf.abnf"),
    ),
    (Lang::En, "skip.abnf", include_str!("../en/skip.abnf")),
    (
        Lang::En,
        "skip_dtmf.abnf",
        include_str!("../en/skip_dtmf.abnf"),
    ),
    (Lang::En, "yes_no.abnf", include_str!("../en/yes_no.abnf")),
    (
        Lang::En,
        "yes_no_dtmf.abnf",
        include_str!("../en/yes_no_dtmf.abnf"),
    ),
    (
        Lang::Mn,
        "after_service.abnf",
        include_str!("../mn/after_service.abnf"),
    ),
    (
        Lang::Mn,
        "after_service_dtmf.abnf",
        include_str!("../mn/after_service_dtmf.abnf"),
    ),
    (
        Lang::Mn,
        "case_type.abnf",
        include_str!("../mn/case_type.abnf"),
    ),
    (
        Lang::Mn,
        "case_type_dtmf.abnf",
        include_str!("../mn/case_type_dtmf.abnf"),
    ),
    (
        Lang::Mn,
        "emergency.abnf",
        include_str!("../mn/emergency.abnf"),
    ),
    (Lang::Mn, "global.abnf", include_str!("../mn/global.abnf")),
    (
        Lang::Mn,
        "global_dtmf.abnf",
        include_str!("../mn/global_dtmf.abnf"),
    ),
    (
        Lang::Mn,
        "info_topics.abnf",
        include_str!("../mn/info_topics.abnf"),
    ),
    (
        Lang::Mn,
        "info_topics_dtmf.abnf",
        include_str!("../mn/info_topics_dtmf.abnf"),
    ),
    (
        Lang::Mn,
        "language.abnf",
        include_str!("../mn/language.abnf"),
    ),
    (
        Lang::Mn,
        "language_dtmf.abnf",
        include_str!("../mn/language_dtmf.abnf"),
    ),
    (
        Lang::Mn,
        "main_menu.abnf",
        include_str!("../mn/main_menu.abnf"),
    ),
    (
        Lang::Mn,
        "main_menu_dtmf.abnf",
        include_str!("../mn/main_menu_dtmf.abnf"),
    ),
    (Lang::Mn, "skip.abnf", include_str!("../mn/skip.abnf")),
    (
        Lang::Mn,
        "skip_dtmf.abnf",
        include_str!("../mn/skip_dtmf.abnf"),
    ),
    (Lang::Mn, "yes_no.abnf", include_str!("../mn/yes_no.abnf")),
    (
        Lang::Mn,
        "yes_no_dtmf.abnf",
        include_str!("../mn/yes_no_dtmf.abnf"),
    ),
];

/// The built-in grammars as (locale, name, grammar), the name being the file name without
/// `.abnf` (`main_menu`, `main_menu_dtmf`). Their origins read `grammars/<locale>/<file>`.
pub fn builtin() -> Result<Vec<(Lang, String, Grammar)>> {
    BUILTIN_FILES
        .iter()
        .map(|(lang, file, src)| {
            let origin = format!("grammars/{}/{file}", lang.tag());
            let grammar = Grammar::parse(src, &origin)?;
            let name = file.trim_end_matches(".abnf").to_string();
            Ok((*lang, name, grammar))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_file_parses_and_matches_the_directory() {
        let all = builtin().expect("built-in grammars parse");
        for lang in [Lang::En, Lang::Mn] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(lang.tag());
            let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
                .expect("grammar dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".abnf"))
                .map(|n| n.trim_end_matches(".abnf").to_string())
                .collect();
            on_disk.sort();
            let mut built: Vec<String> = all
                .iter()
                .filter(|(l, _, _)| *l == lang)
                .map(|(_, n, _)| n.clone())
                .collect();
            built.sort();
            assert_eq!(
                built,
                on_disk,
                "grammars/{} and the built-in list differ",
                lang.tag()
            );
        }
    }
}
