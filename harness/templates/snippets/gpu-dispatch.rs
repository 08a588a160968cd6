        if variant.features.iter().any(|f| f == "cuda") {
            return gpu::score(request);
        }
