fn main() {
    println!("gdl-gpu: CLI not built yet");
}
