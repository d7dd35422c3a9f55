//! The IIS files of `install/`: well-formed, and keeping `dncs.ini` and `data\` out of reach. (The
//! Apache snippet is run by a real Apache in `apache`.)

const BIN_WEB_CONFIG: &str = include_str!("../install/web.config");
const DATA_WEB_CONFIG: &str = include_str!("../install/data-web.config");
const INSTALL_PS1: &str = include_str!("../install/install.ps1");

/// The `requestFiltering` element of an IIS web.config.
fn request_filtering<'a>(doc: &'a roxmltree::Document<'a>) -> roxmltree::Node<'a, 'a> {
    doc.descendants()
        .find(|n| n.has_tag_name("requestFiltering"))
        .expect("a requestFiltering section")
}

#[test]
fn install_bin_web_config_runs_dncs_exe_and_hides_dncs_ini() {
    let doc = roxmltree::Document::parse(BIN_WEB_CONFIG).expect("well-formed XML");
    let handler = doc
        .descendants()
        .find(|n| n.has_tag_name("add") && n.attribute("modules") == Some("CgiModule"))
        .expect("a CGI handler");
    assert_eq!(handler.attribute("path"), Some("dncs.exe"));
    let hidden: Vec<_> = request_filtering(&doc)
        .descendants()
        .filter(|n| n.has_tag_name("add"))
        .filter_map(|n| n.attribute("segment"))
        .collect();
    assert_eq!(hidden, ["dncs.ini"]);
}

#[test]
fn install_data_web_config_serves_nothing_and_install_ps1_puts_it_in_data() {
    let doc = roxmltree::Document::parse(DATA_WEB_CONFIG).expect("well-formed XML");
    let extensions = request_filtering(&doc)
        .children()
        .find(|n| n.has_tag_name("fileExtensions"))
        .expect("fileExtensions");
    assert_eq!(extensions.attribute("allowUnlisted"), Some("false"));
    assert!(
        !extensions.children().any(|n| n.is_element()),
        "no extension is allowed"
    );
    assert!(
        INSTALL_PS1
            .contains(r#"Copy-Item "$here\install\data-web.config" "$target\data\web.config""#),
        "install.ps1 installs it"
    );
}
