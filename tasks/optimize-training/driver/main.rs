//! The optimize-training driver: runs the solution's pipeline (`solution::run`, what its
//! `src/main.rs` calls) with the scorer's command line, and reports whether it returned.
//! The scorer times this whole process and reads the weights it wrote.

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match solution::run(&args) {
        Ok(()) => println!("REBENCH-DRIVER {{\"done\": true}}"),
        Err(err) => println!("REBENCH-DRIVER {{\"invalid\": {}}}", json_string(&format!("the pipeline returned an error: {err:#}"))),
    }
}
